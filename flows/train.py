"""The training flow: base model, then motion LoRA, then content LoRA, in one MLflow run tree.

Each stage run lives in ``<out>/<stage>/<key>/``, its key hashing the stage config, its data
and the stage it builds on; a finished run there is skipped, an interrupted one resumes
from its last checkpoint. ``from_stage`` starts later in the chain, reusing the newest
finished runs of the earlier stages found in ``<out>``. Everything is validated before the
first stage starts.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from layerflow_model.callbacks import StageArtifacts
from layerflow_model.completion import keyed_stage_config, keyed_standalone_stage, latest_done
from layerflow_model.train_config import STAGES, StageName, load_model_config, load_training_config, read_stage_config
from layerflow_model.training import require_device
from tasks.train_tasks import build_auto_data, close_training_run, open_training_run, run_stage
from tasks.tracking import tracking_for


def earlier_stages(out: Path, from_stage: StageName) -> dict[str, tuple[str, StageArtifacts]]:
    """Stage -> (key, artifacts) of the newest finished run of each stage before ``from_stage``."""
    found = {}
    for stage in STAGES[: STAGES.index(from_stage)]:
        done = latest_done(out / stage)
        if done is None:
            raise ValueError(
                f"from_stage: starting at {from_stage!r} needs a finished {stage!r} stage in {out / stage}; "
                f"none found (run from {stage!r} first)"
            )
        found[stage] = done
    return found


@flow(name="layerflow-train")
def train_flow(out: Path, profile: str | None = None, config_file: Path | None = None,
               from_stage: StageName = "base", parent_run_id: str | None = None,
               seed: int | None = None, cache_dir: Path | None = None) -> dict[str, StageArtifacts]:
    """Train the stages from ``from_stage`` on; return each stage's artifacts. ``seed``, when
    given, replaces the config's training seed; ``cache_dir`` (default ``<out>/cache``) holds the
    latent caches, keyed by data and codec, so runs in other folders on the same data can share it.

    Stage runs nest under a new parent MLflow run, or under ``parent_run_id`` (a run of the
    tracking store of ``out``, e.g. the pipeline's) when given; that run is left open.
    """
    out = Path(out).resolve()
    config = load_training_config(profile, config_file, seed)
    require_device(config.device)  # before any data is built
    clip = load_model_config(config.model).clip
    results = earlier_stages(out, from_stage)

    data = {stage: list(config.stage_settings(stage).data) for stage in STAGES}
    if any(not folders for folders in data.values()):
        built = build_auto_data(out, config.auto_data, clip)
        data = {stage: folders or built[stage] for stage, folders in data.items()}

    tracking, parent = open_training_run(out, config, data, name=f"train-from-{from_stage}", run_id=parent_run_id)
    try:
        for stage in STAGES[STAGES.index(from_stage):]:
            key, stage_config = keyed_stage_config(config, stage, out, data[stage], results, cache_dir)
            results[stage] = (key, run_stage(stage_config, key, tracking, parent))
    except BaseException:
        if parent_run_id is None:
            close_training_run(tracking, parent, "FAILED")
        raise
    if parent_run_id is None:
        close_training_run(tracking, parent, "FINISHED")
    return {stage: artifacts for stage, (_, artifacts) in results.items()}


@flow(name="layerflow-train-stage")
def train_stage_flow(config_file: Path, out: Path, cache_dir: Path | None = None) -> StageArtifacts:
    """Train one stage from its own config file (a stage config, e.g. a prompt readout on a finished model)
    in ``<out>/<stage>/<key>/`` with the cache in ``cache_dir`` (default ``<out>/cache``; the file's
    ``out_dir`` and ``cache_dir`` are replaced), tracked in an MLflow run of ``out``'s store. The key hashes
    the config, its data and the weights it starts from: a finished run is skipped, an interrupted one resumes.
    """
    out = Path(out).resolve()
    key, config = keyed_standalone_stage(read_stage_config(config_file, out_dir=out), out, cache_dir)
    return run_stage(config, key, tracking_for(out), parent_run_id=None)
