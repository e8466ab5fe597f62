"""MLflow tracking of training: the run tree (a parent per flow, a child per stage) and callbacks.

Everything goes through an explicit :class:`mlflow.MlflowClient` and run ids, not MLflow's
fluent active-run stack, so Prefect may run tasks on any thread. The tracking URI is
``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<out>/mlflow.db`` with artifacts under
``<out>/mlartifacts``; runs go to the experiment ``layerflow``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from layerflow_model.callbacks import StageArtifacts

EXPERIMENT = "layerflow"
STAGE_TAG = "layerflow.stage"
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


@dataclass(frozen=True)
class Tracking:
    """Where runs go: the tracking URI and the ``layerflow`` experiment's id."""

    uri: str
    experiment_id: str

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri)


def tracking_for(out: Path) -> Tracking:
    """``MLFLOW_TRACKING_URI``, or a sqlite store in ``out``; the ``layerflow`` experiment created if missing."""
    out = Path(out).resolve()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{out / 'mlflow.db'}"
    out.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return Tracking(uri, experiment.experiment_id)
    location = None if "MLFLOW_TRACKING_URI" in os.environ else (out / "mlartifacts").as_uri()
    return Tracking(uri, client.create_experiment(EXPERIMENT, artifact_location=location))


def git_commit() -> str:
    """The code's git commit (``-dirty`` when the tree has changes), or ``unknown`` outside a repository."""
    repo = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def flat_params(values: dict, prefix: str = "") -> dict[str, str]:
    """Nested config values -> ``{"a.b": "value"}`` MLflow params (long values truncated)."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flat_params(value, prefix=f"{name}.")
        else:
            flat[name] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def data_tags(hashes: dict[str, str]) -> dict[str, str]:
    """``{folder name: content hash}`` -> ``{"data.<name>.content_hash": hash}``."""
    return {f"data.{name}.content_hash": digest for name, digest in hashes.items()}


def open_run(tracking: Tracking, name: str, params: dict[str, str], tags: dict[str, str],
             parent_run_id: str | None = None) -> str:
    """Create a RUNNING run (a child of ``parent_run_id`` when given) with params and tags; return its id."""
    client = tracking.client()
    tags = tags | {"git_commit": git_commit()}
    if parent_run_id is not None:
        tags["mlflow.parentRunId"] = parent_run_id
    run_id = client.create_run(tracking.experiment_id, run_name=name, tags=tags).info.run_id
    log_params_and_tags(tracking, run_id, params, {})
    return run_id


def log_params_and_tags(tracking: Tracking, run_id: str, params: dict[str, str], tags: dict[str, str]) -> None:
    """Add params and tags to an existing run."""
    client = tracking.client()
    items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=items[start:start + 100])
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def close_run(tracking: Tracking, run_id: str, status: str) -> None:
    """End a run as ``FINISHED``, ``FAILED`` or ``KILLED``."""
    tracking.client().set_terminated(run_id, status=status)


class MlflowCallbacks:
    """:class:`layerflow_model.callbacks.TrainCallbacks` logging to one MLflow run."""

    def __init__(self, tracking: Tracking, run_id: str) -> None:
        self.client, self.run_id = tracking.client(), run_id

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def on_checkpoint(self, path: Path) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag("layerflow.last_checkpoint", str(path))])

    def on_stage_end(self, artifacts: StageArtifacts) -> None:
        """Log the end-of-stage metrics, sample videos, config and the model/adapter files."""
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, artifacts.final_step) for k, v in artifacts.metrics.items()]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.client.log_artifacts(self.run_id, str(artifacts.samples_dir), "samples")
        self.client.log_artifact(self.run_id, str(artifacts.config_file))
        for folder, name in ((artifacts.adapter_dir, "adapter"), (artifacts.model_dir, "model")):
            if folder is not None:
                self.client.log_artifacts(self.run_id, str(folder), name)


@contextmanager
def stage_run(tracking: Tracking, parent_run_id: str | None, stage: str, params: dict[str, str],
              tags: dict[str, str]) -> Iterator[MlflowCallbacks]:
    """A run for one stage (a child of ``parent_run_id`` when given), tagged ``layerflow.stage``; FINISHED on
    success, FAILED on an exception."""
    run_id = open_run(tracking, stage, params, tags | {STAGE_TAG: stage}, parent_run_id=parent_run_id)
    try:
        yield MlflowCallbacks(tracking, run_id)
    except BaseException:
        close_run(tracking, run_id, "FAILED")
        raise
    close_run(tracking, run_id, "FINISHED")
