"""The evaluation flow: a model's four tasks and two baselines, scored against ground truth.

On an evaluation set (held-out synthetic seeds by default, or any folder in the official
layout) the model decomposes each blend, fills the background of each foreground, fills the
foreground of each background and generates from each sample's prompts; the ``median`` and
``classical`` baselines decompose the same blends. Everything is written in the official
layout and scored (:mod:`layerflow_model.scoring`); on synthetic data the oracle
(:mod:`data_recipes.oracle`) also reads the prompted attributes back. Results go to::

    OUT/ground_truth/            the evaluation clips at the model's shape
    OUT/predictions/<method>/    each method's layers, official layout
    OUT/report/scores/<method>.json, comparison.json, plots/<column>.png, previews/<method>.png, report.md
    OUT/report/previews/hardest/<task>/<clip>.png   the clips each task scores worst, beside their truth

and to an MLflow run tagged ``layerflow.stage=eval`` (a child of ``parent_run_id`` when
given), a Prefect table artifact and a markdown report artifact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from data_recipes.synthetic import TRAIN_SEED_LIMIT
from layerflow_model.config import SamplerConfig
from layerflow_model.scoring import comparison_rows, report_markdown
from tasks.eval_tasks import (
    close_eval_run,
    load_eval_set,
    load_pipeline,
    log_eval_results,
    open_eval_run,
    prompt_adherence,
    publish_report,
    run_baseline,
    run_model_task,
    score_predictions,
    write_hardest_clips,
    write_report_files,
    write_sequences,
)
from tasks.tracking import flat_params

TaskName = Literal["decompose", "fill_background", "fill_foreground", "generate"]
BaselineName = Literal["median", "classical"]


class EvalConfig(BaseModel):
    """What one evaluation runs; unknown keys rejected, errors name the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Path = Field(description="a saved LayerFlowPipeline folder")
    out: Path = Field(description="output folder")
    data: Path | None = Field(default=None, description="a folder in the official layout; None: held-out synthetic seeds")
    count: int = Field(default=8, gt=0, description="synthetic clips (ignored with data)")
    first_seed: int = Field(default=TRAIN_SEED_LIMIT, ge=TRAIN_SEED_LIMIT, description="first held-out synthetic seed")
    tasks: tuple[TaskName, ...] = ("decompose", "fill_background", "fill_foreground", "generate")
    baselines: tuple[BaselineName, ...] = ("median", "classical")
    steps: int | None = Field(default=None, gt=0, description="sampling steps; None: the model's per-task defaults")
    guidance: float | None = Field(default=None, ge=1.0, description="guidance of every task (1 = off); None: the model's per-task defaults")
    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=4, gt=0)
    hardest: int = Field(default=3, ge=0, description="clips per task and headline metric in the hardest-clips table")
    device: str = "cpu"


@flow(name="layerflow-evaluate")
def evaluate_flow(config: EvalConfig, parent_run_id: str | None = None, tracking_dir: Path | None = None) -> list[dict]:
    """Run, score and report every method of ``config``; returns the comparison rows (mean per column).

    MLflow goes to the store of ``tracking_dir`` (default ``config.out``; ``MLFLOW_TRACKING_URI``
    overrides both), which must hold ``parent_run_id`` when that is given.
    """
    out, report = config.out.resolve(), config.out.resolve() / "report"
    params = flat_params(json.loads(config.model_dump_json()))
    tracking, run_id = open_eval_run(Path(tracking_dir or out).resolve(), params, parent_run_id)
    try:
        pipe = load_pipeline(config.model, config.device)
        shape = (pipe.config.num_frames, pipe.config.height, pipe.config.width)
        samples = load_eval_set(config.data, shape, config.count, config.first_seed)
        gt = write_sequences(out / "ground_truth", samples, [s.clip for s in samples])

        clips = {}
        for name in config.tasks:
            clips[name] = run_model_task(pipe, samples, name, config.steps, config.guidance, config.seed, config.batch_size)
        for name in config.baselines:
            clips[name] = run_baseline(name, samples)

        scores = {m: score_predictions(write_sequences(out / "predictions" / m, samples, c), gt,
                                       report / "scores" / f"{m}.json") for m, c in clips.items()}
        synthetic = all("attributes" in s.extra for s in samples)
        adherence = prompt_adherence(samples, clips) if synthetic else {}
        rows = comparison_rows(scores, {m: {f"oracle_{k}": v for k, v in a.items()} for m, a in adherence.items()})
        hardest = write_hardest_clips(report / "previews", samples, {m: clips[m] for m in config.tasks}, scores,
                                      config.hardest)
        write_report_files(report, rows, adherence, clips, hardest)

        artifact_uri = log_eval_results(tracking, run_id, rows, report)
        notes = [f"model: {config.model}", f"data: {config.data or 'held-out synthetic seeds'} ({len(samples)} "
                 f"clips, {shape[0]} frames of {shape[1]}x{shape[2]})",
                 f"sampling: {config.steps or 'the model default'} steps, guidance {config.guidance or 'the model default'}",
                 "model defaults: " + ", ".join(f"{key} {pipe.config[key]}" for key in SamplerConfig.model_fields)]
        if adherence:
            notes.append("oracle_* columns: prompt adherence, the fraction of clips whose attribute reads back "
                         f"right (on the ground truth itself: {adherence['ground_truth']})")
        plots = {c: f"{artifact_uri}/plots/{c}.png" for c in rows[0] if c != "method"}
        hardest = [row | {"preview": f"{artifact_uri}/{row['preview']}"} for row in hardest]
        markdown = report_markdown("LayerFlow evaluation", rows, plots, notes, hardest)
        publish_report(tracking, run_id, rows, markdown, report)
    except BaseException:
        close_eval_run(tracking, run_id, "FAILED")
        raise
    close_eval_run(tracking, run_id, "FINISHED")
    return rows
