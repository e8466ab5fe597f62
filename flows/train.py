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
from layerflow_model.completion import latest_done, stage_key
from layerflow_model.train_config import STAGES, StageName, TrainConfig, get_profile, load_model_config, read_train_config
from tasks.train_tasks import build_auto_data, close_training_run, open_training_run, run_stage


def load_training_config(profile: str | None, config_file: Path | None) -> TrainConfig:
    """The config of exactly one of a profile name or a config file."""
    if (profile is None) == (config_file is None):
        raise ValueError("give exactly one of a profile (quick, default) and a config file")
    return get_profile(profile) if profile is not None else read_train_config(config_file)


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
               from_stage: StageName = "base", parent_run_id: str | None = None) -> dict[str, StageArtifacts]:
    """Train the stages from ``from_stage`` on; return each stage's artifacts.

    Stage runs nest under a new parent MLflow run, or under ``parent_run_id`` (a run of the
    tracking store of ``out``, e.g. the pipeline's) when given; that run is left open.
    """
    out = Path(out).resolve()
    config = load_training_config(profile, config_file)
    clip = load_model_config(config.model).clip
    results = earlier_stages(out, from_stage)

    data = {stage: list(config.stage_settings(stage).data) for stage in STAGES}
    if any(not folders for folders in data.values()):
        built = build_auto_data(out, config.auto_data, clip)
        data = {stage: folders or built[stage] for stage, folders in data.items()}

    tracking, parent = open_training_run(out, config, data, name=f"train-from-{from_stage}", run_id=parent_run_id)
    try:
        for stage in STAGES[STAGES.index(from_stage):]:
            upstream = {"base": None, "motion": "base", "content": "motion"}[stage]
            stage_config = config.stage_config(
                stage, out_dir=out / stage, cache_dir=out / "cache", data=data[stage],
                init_from=results["base"][1].model_dir if stage != "base" else None,
                motion_adapter=results["motion"][1].adapter_dir if stage == "content" else None,
            )
            key = stage_key(stage_config, results[upstream][0] if upstream else "")
            stage_config = stage_config.model_copy(update={"out_dir": out / stage / key})
            results[stage] = (key, run_stage(stage_config, key, tracking, parent))
    except BaseException:
        if parent_run_id is None:
            close_training_run(tracking, parent, "FAILED")
        raise
    if parent_run_id is None:
        close_training_run(tracking, parent, "FINISHED")
    return {stage: artifacts for stage, (_, artifacts) in results.items()}
