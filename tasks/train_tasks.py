"""Prefect tasks of the training flow: data for stages that list none, the MLflow run tree, one stage.

Training tasks use ``NO_CACHE``: they write files and MLflow runs, and a stage already
finished for the same inputs and config is skipped through its ``DONE.json`` marker
(:mod:`layerflow_model.completion`), which survives Prefect's own state.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from data_recipes.training_data import build_training_data
from layerflow_model.callbacks import StageArtifacts, TrainCallbacks
from layerflow_model.completion import read_done, write_done
from layerflow_model.config import ClipConfig
from layerflow_model.latent_cache import data_content_hash
from layerflow_model.train_config import AutoData, StageConfig, TrainConfig, load_model_config
from layerflow_model.training import train_stage

from .tracking import Tracking, close_run, data_tags, flat_params, log_params_and_tags, open_run, stage_run, tracking_for

#################################################################################
#                     Data for stages that list no shard folders                #
#################################################################################


@task(cache_policy=NO_CACHE)
def build_auto_data(out: Path, auto: AutoData, clip: ClipConfig) -> dict[str, list[Path]]:
    """Build data for every stage into ``out/data`` (complete shards are kept); stage -> folders."""
    return build_training_data(Path(out) / "data", auto, clip)


#################################################################################
#                            Run tree and stages                                #
#################################################################################


def model_config_params(spec: str) -> dict[str, str]:
    """The model config a preset name or file resolves to, as ``model_config.<field>`` MLflow params."""
    return flat_params(load_model_config(spec).model_dump(mode="json"), prefix="model_config.")


@task(cache_policy=NO_CACHE)
def open_training_run(out: Path, config: TrainConfig, data: dict[str, list[Path]], name: str,
                      run_id: str | None = None) -> tuple[Tracking, str]:
    """The flow's parent MLflow run: the resolved config as params, data hashes and git commit as tags.

    With ``run_id`` (an open run of the same store) the params and tags go on that run instead.
    """
    tracking = tracking_for(out)
    hashes = {folder.name: data_content_hash(folder) for folders in data.values() for folder in folders}
    params = flat_params(config.model_dump(mode="json")) | model_config_params(config.model)
    if run_id is None:
        return tracking, open_run(tracking, name, params, data_tags(hashes))
    log_params_and_tags(tracking, run_id, params, data_tags(hashes))
    return tracking, run_id


@task(cache_policy=NO_CACHE)
def close_training_run(tracking: Tracking, run_id: str, status: str) -> None:
    """End the parent run as FINISHED or FAILED."""
    close_run(tracking, run_id, status)


class PrefectProgress:
    """Training callbacks that pass everything to ``inner`` and show a stage's progress in Prefect.

    About every twentieth of ``config.steps`` (and at the last step) the stage's progress artifact
    moves to the percentage of steps done and the task run logs the step, loss and samples/s;
    checkpoints are logged too.
    """

    UPDATES = 20

    def __init__(self, inner: TrainCallbacks, config: StageConfig) -> None:
        self.inner, self.stage, self.steps = inner, config.stage, config.steps
        self.every = max(1, config.steps // self.UPDATES)
        self.logger = get_run_logger()
        self.artifact = create_progress_artifact(0.0, description=f"{config.stage}: training steps in {config.out_dir}")

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.inner.on_step(step, metrics)
        if "loss" in metrics and (step % self.every == 0 or step == self.steps):
            update_progress_artifact(self.artifact, 100.0 * step / self.steps)
            self.logger.info("%s: step %d/%d, loss %.4g, %.1f samples/s", self.stage, step, self.steps,
                             metrics["loss"], metrics["samples_per_s"])

    def on_checkpoint(self, path: Path) -> None:
        self.inner.on_checkpoint(path)
        self.logger.info("%s: checkpoint %s", self.stage, path)

    def on_stage_end(self, artifacts: StageArtifacts) -> None:
        self.inner.on_stage_end(artifacts)


@task(cache_policy=NO_CACHE, task_run_name="train-{config.stage}")
def run_stage(config: StageConfig, key: str, tracking: Tracking, parent_run_id: str | None) -> StageArtifacts:
    """Train one stage in an MLflow run (a child of ``parent_run_id`` when given), unless a finished run with
    this key is in ``config.out_dir``."""
    if (done := read_done(config.out_dir, key)) is not None:
        return done
    hashes = {folder.name: data_content_hash(folder) for folder in config.data}
    params = flat_params(config.model_dump(mode="json")) | model_config_params(config.model)
    with stage_run(tracking, parent_run_id, config.stage, params, data_tags(hashes) | {"layerflow.stage_key": key}) as callbacks:
        artifacts = train_stage(config, PrefectProgress(callbacks, config))
    write_done(artifacts, key)
    return artifacts
