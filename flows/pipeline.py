"""The whole LayerFlow pipeline: layered shards -> base -> motion -> content -> evaluation.

One Prefect flow run and one parent MLflow run (tagged ``layerflow.stage=pipeline``); the
training flow's stage runs and the evaluation run nest under it. Everything lands in ``out``:

    out/data/        shards of every recipe (synthetic, coarse, copy-paste, frozen, layered images)
    out/base|motion|content/<key>/   each stage's checkpoints, samples, model or adapter
    out/model/       the exported inference model (a LayerFlowPipeline folder)
    out/eval/        the evaluation report, scores and previews
    out/cache/       the latent caches of the training data (or the folder given as ``cache_dir``)
    out/mlflow.db    the MLflow store (unless MLFLOW_TRACKING_URI points at a server)

A rerun skips finished stages and rebuilds only missing shards, so it resumes where a killed
run stopped.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from flows.evaluate import EvalConfig, evaluate_flow
from flows.train import train_flow
from layerflow_model.training import require_device
from tasks.pipeline_tasks import close_pipeline_run, open_pipeline_run, publish_model


class PipelineEval(BaseModel):
    """Evaluation settings of a pipeline profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(gt=0, description="held-out synthetic clips")
    steps: int | None = Field(default=None, gt=0, description="sampling steps; None: the model's per-task defaults")


PIPELINE_EVAL = {"quick": PipelineEval(count=4), "default": PipelineEval(count=64), "gpu": PipelineEval(count=64)}


@flow(name="layerflow-pipeline")
def pipeline_flow(profile: str = "quick", out: Path = Path("runs/quick"), device: str = "cpu",
                  seed: int | None = None, cache_dir: Path | None = None) -> Path:
    """Build data, train the three stages and evaluate, for a training profile; returns the model folder.

    ``seed`` replaces the profile's training seed (None: the profile's); the data and the
    evaluation clips stay the same, so runs over seeds differ only by training. ``cache_dir``
    (default ``<out>/cache``) holds the latent caches; they are keyed by data and codec, and the
    data builds the same in any folder, so pipelines in other folders can share one.
    """
    if profile not in PIPELINE_EVAL:
        raise ValueError(f"profile: unknown {profile!r}; choose one of {sorted(PIPELINE_EVAL)}")
    require_device(device)  # the evaluation's, before hours of training; the profile's is the training flow's check
    out = Path(out).resolve()
    tracking, run_id = open_pipeline_run(out, profile)
    try:
        stages = train_flow(out=out, profile=profile, parent_run_id=run_id, seed=seed, cache_dir=cache_dir)
        model = publish_model(stages["content"].model_dir, out / "model")
        settings = PIPELINE_EVAL[profile]
        evaluate_flow(
            EvalConfig(model=model, out=out / "eval", count=settings.count, steps=settings.steps, device=device),
            parent_run_id=run_id,
            tracking_dir=out,
        )
    except BaseException:
        close_pipeline_run(tracking, run_id, "FAILED")
        raise
    close_pipeline_run(tracking, run_id, "FINISHED")
    return model
