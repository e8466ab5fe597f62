"""Prefect tasks of the pipeline flow: its parent MLflow run and the published model folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from layerflow_model.video_io import atomic_output

from .tracking import Tracking, close_run, open_run, tracking_for


@task(cache_policy=NO_CACHE)
def open_pipeline_run(out: Path, profile: str) -> tuple[Tracking, str]:
    """The pipeline's parent MLflow run (``layerflow.stage=pipeline``) in the store of ``out``."""
    tracking = tracking_for(out)
    params = {"pipeline.profile": profile, "pipeline.out": str(out)}
    return tracking, open_run(tracking, f"pipeline-{profile}", params, {"layerflow.stage": "pipeline"})


@task(cache_policy=NO_CACHE)
def close_pipeline_run(tracking: Tracking, run_id: str, status: str) -> None:
    """End the parent run as FINISHED or FAILED."""
    close_run(tracking, run_id, status)


@task(cache_policy=NO_CACHE)
def publish_model(model_dir: Path, destination: Path) -> Path:
    """Copy the exported inference model to a stable path (replaced whole, never half-written)."""
    with atomic_output(destination) as tmp:
        shutil.copytree(model_dir, tmp)
    return destination
