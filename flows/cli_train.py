"""``layerflow train``: the three training stages from a config file or a named profile; ``layerflow
train-stage``: one stage from its own config file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from layerflow_model.train_config import PROFILES


# The named training configs, one choice per entry of PROFILES.
Profile = Enum("Profile", {name: name for name in PROFILES}, type=str)


# --cache of pipeline, train and train-stage: the latent caches are keyed by data and codec, so any run may share them.
CacheFolder = Annotated[Optional[Path], typer.Option(
    "--cache", help="latent cache folder (default OUT/cache); keyed by data and codec, so runs in other --out "
                    "folders can share one")]


class Stage(str, Enum):
    base = "base"
    motion = "motion"
    content = "content"


def train(
    out: Annotated[Path, typer.Option("--out", help="output folder: data/, cache/, base/, motion/, content/, mlflow.db")],
    config: Annotated[Optional[Path], typer.Option("--config", help="a training config (YAML or JSON): model, seed, base:, motion:, content:")] = None,
    profile: Annotated[Optional[Profile], typer.Option("--profile", help="a named config: quick (a few minutes on 2 CPU cores, builds its own data), default (about 30 minutes) or gpu (one CUDA GPU, about 7 minutes on an H200)")] = None,
    from_stage: Annotated[Stage, typer.Option("--from-stage", help="first stage to run; earlier ones are reused from --out")] = Stage.base,
    seed: Annotated[Optional[int], typer.Option("--seed", min=0, help="training seed (default: the config's)")] = None,
    cache: CacheFolder = None,
) -> None:
    """Train the base model, the motion LoRA and the content LoRA, tracked in MLflow.

    Give exactly one of --config and --profile. A stage already finished for the same inputs and
    config is skipped; an interrupted one resumes from its last checkpoint. Runs are logged to
    MLFLOW_TRACKING_URI, else to sqlite:///OUT/mlflow.db. The inference model is OUT/content/<key>/model.
    """
    from flows.train import train_flow

    if (config is None) == (profile is None):
        raise typer.BadParameter("give exactly one of --config and --profile")
    results = train_flow(out=out, profile=profile.value if profile else None, config_file=config,
                         from_stage=from_stage.value, seed=seed, cache_dir=cache)
    for artifacts in results.values():
        echo_artifacts(artifacts)


def train_stage(
    config: Annotated[Path, typer.Argument(help="a stage config (YAML or JSON): stage, model (a preset or a model "
                                                "config file), data, steps, lr, init_from, trainable, ...; its out_dir "
                                                "and cache_dir are replaced")],
    out: Annotated[Path, typer.Option("--out", help="output folder: <stage>/<key>/, cache/, mlflow.db")],
    cache: CacheFolder = None,
) -> None:
    """Train one stage from its own config file, tracked in MLflow: e.g. a prompt readout alone on a
    finished model (configs/readout-on-shipped.yaml).

    The run lands in OUT/<stage>/<key>/, its key hashing the config, its data and the weights it
    starts from: a finished run is skipped, an interrupted one resumes from its last checkpoint.
    Runs are logged to MLFLOW_TRACKING_URI, else to sqlite:///OUT/mlflow.db.
    """
    from flows.train import train_stage_flow

    echo_artifacts(train_stage_flow(config_file=config, out=out, cache_dir=cache))


def echo_artifacts(artifacts) -> None:
    """Print one line per finished stage: its name, its model or adapter folder, its end-of-stage metrics."""
    typer.echo(f"{artifacts.stage}: {artifacts.model_dir or artifacts.adapter_dir} {artifacts.metrics or ''}".rstrip())
