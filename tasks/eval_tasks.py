"""Prefect tasks of the evaluation flow: the eval set, the model's four tasks, the baselines,
scoring, prompt adherence, and the report in MLflow and Prefect.

Every task uses ``NO_CACHE``: they take pipelines and arrays (not worth hashing) or write
files and MLflow runs. Scores are always computed from the files written in the official
layout, so ``layerflow score --pred OUT/predictions/METHOD --gt OUT/ground_truth`` gives
the same numbers. MLflow goes through :mod:`tasks.tracking` (explicit client and run ids).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from mlflow.entities import Metric
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from data_recipes.baselines import make_baseline
from data_recipes.layerflow_folder_source import LayerflowFolderConfig, LayerflowFolderRecipe
from data_recipes.oracle import SyntheticOracle, accuracy, truth_of
from data_recipes.sample import LayeredSample
from data_recipes.synthetic import held_out_samples
from layerflow_model import LayeredClip, LayerFlowPipeline
from layerflow_model.layerflow_folder import write_layerflow_meta, write_layerflow_sequence
from layerflow_model.metrics import json_safe
from layerflow_model.preview import write_comparison_grid, write_preview_grid
from layerflow_model.scoring import hardest_sequences, plot_metric, score_folders, write_scores
from layerflow_model.video_io import write_text_atomic

from .tracking import Tracking, close_run, open_run, tracking_for

HARDEST_METRICS = ("alpha_iou", "bg_psnr", "composite_mae")  # the report's hardest clips are picked on these


@task(cache_policy=NO_CACHE)
def load_pipeline(model: Path, device: str) -> LayerFlowPipeline:
    """A saved LayerFlowPipeline folder, on ``device``."""
    return LayerFlowPipeline.from_pretrained(model).to(device)


@task(cache_policy=NO_CACHE)
def load_eval_set(data: Path | None, shape: tuple[int, int, int], count: int, first_seed: int) -> list[LayeredSample]:
    """Held-out synthetic clips (seeds ``first_seed ..``) or, with ``data``, a folder in the official layout,
    fitted to the model's (frames, height, width)."""
    frames, height, width = shape
    if data is None:
        return held_out_samples(count, frames, height, width, first_seed)
    recipe = LayerflowFolderRecipe(LayerflowFolderConfig(src=data, frames=frames, height=height, width=width))
    return [sample for item in recipe.plan() for sample in recipe.make(item)]


@task(cache_policy=NO_CACHE, task_run_name="model-{task_name}")
def run_model_task(pipe: LayerFlowPipeline, samples: Sequence[LayeredSample], task_name: str, steps: int | None,
                   guidance: float | None, seed: int, batch_size: int) -> list[LayeredClip]:
    """The model's ``task_name`` on every sample (given layers from the sample, its prompts), in batches;
    ``steps``, ``guidance``: None takes the model's for the task."""
    generator = torch.Generator().manual_seed(seed)
    clips = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start:start + batch_size]
        given = None if task_name == "generate" else [s.clip for s in batch]
        out = pipe([s.prompts for s in batch], given=given, task=task_name, num_inference_steps=steps,
                   guidance_scale=guidance, generator=generator)
        clips += out.clips
    return clips


@task(cache_policy=NO_CACHE, task_run_name="baseline-{name}")
def run_baseline(name: str, samples: Sequence[LayeredSample]) -> list[LayeredClip]:
    """Baseline ``name`` decomposing each sample's blend."""
    baseline = make_baseline(name)
    return [baseline.decompose(s.clip.blend) for s in samples]


@task(cache_policy=NO_CACHE)
def write_sequences(folder: Path, samples: Sequence[LayeredSample], clips: Sequence[LayeredClip]) -> Path:
    """Clips in the official layout, ``folder/<sample key>/``, with the samples' prompts in a meta json."""
    for sample, clip in zip(samples, clips, strict=True):
        write_layerflow_sequence(folder / sample.key, clip)
    write_layerflow_meta(folder, {s.key: s.prompts for s in samples})
    return folder


@task(cache_policy=NO_CACHE, task_run_name="score-{pred.name}")
def score_predictions(pred: Path, gt: Path, scores_file: Path) -> dict:
    """``score_folders(pred, gt)``, also written to ``scores_file``."""
    scores = score_folders(pred, gt)
    write_scores(scores_file, scores)
    return scores


@task(cache_policy=NO_CACHE)
def prompt_adherence(samples: Sequence[LayeredSample], clips_by_method: dict[str, list[LayeredClip]]) -> dict:
    """Oracle accuracy per attribute for each method, and for the ground truth itself (``ground_truth``)."""
    oracle = SyntheticOracle(samples[0].clip.num_frames, *samples[0].clip.size)
    truths = [truth_of(s.extra["attributes"]) for s in samples]
    clips_by_method = {"ground_truth": [s.clip for s in samples], **clips_by_method}
    return {m: accuracy([oracle.read(c) for c in clips], truths) for m, clips in clips_by_method.items()}


@task(cache_policy=NO_CACHE)
def write_hardest_clips(folder: Path, samples: Sequence[LayeredSample], clips_by_method: dict[str, list[LayeredClip]],
                        scores: dict[str, dict], count: int) -> list[dict]:
    """Per method and metric of :data:`HARDEST_METRICS`, the ``count`` worst clips, each previewed beside its
    ground truth in ``folder/hardest/<method>/<sample key>.png``; returns one row per clip:
    ``{"method", "metric", "sequence", "value", "prompt", "preview"}`` (preview relative to ``folder.parent``).
    An earlier evaluation's ``folder/hardest`` is replaced."""
    shutil.rmtree(folder / "hardest", ignore_errors=True)
    by_key = {sample.key: index for index, sample in enumerate(samples)}
    rows, written = [], set()
    for method, clips in clips_by_method.items():
        for metric in HARDEST_METRICS:
            for key, value in hardest_sequences(scores[method]["per_sequence"], metric, count):
                sample, clip = samples[by_key[key]], clips[by_key[key]]
                preview = folder / "hardest" / method / f"{key}.png"
                if preview not in written:  # a clip can be among the hardest on several metrics
                    write_comparison_grid(preview, sample.clip, clip, scale=3)
                    written.add(preview)
                rows.append({"method": method, "metric": metric, "sequence": key, "value": value,
                             "prompt": sample.prompts.fg,
                             "preview": str(preview.relative_to(folder.parent))})
    return rows


@task(cache_policy=NO_CACHE)
def write_report_files(folder: Path, rows: list[dict], adherence: dict,
                       clips_by_method: dict[str, list[LayeredClip]], hardest: list[dict]) -> Path:
    """``comparison.json`` (rows, oracle accuracies, hardest clips), ``plots/<column>.png`` per table column
    and ``previews/<method>.png`` (the first clip) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    record = json.dumps(json_safe({"rows": rows, "oracle": adherence, "hardest": hardest}), indent=2, allow_nan=False)
    write_text_atomic(folder / "comparison.json", record + "\n")
    for column in [c for c in rows[0] if c != "method"]:
        plot_metric(folder / "plots" / f"{column}.png", column, rows)
    for method, clips in clips_by_method.items():
        write_preview_grid(folder / "previews" / f"{method}.png", clips[0])
    return folder


#################################################################################
#                          MLflow run and Prefect artifacts                     #
#################################################################################


@task(cache_policy=NO_CACHE)
def open_eval_run(out: Path, params: dict[str, str], parent_run_id: str | None) -> tuple[Tracking, str]:
    """The ``eval`` run (tagged ``layerflow.stage=eval``), a child of ``parent_run_id`` when given."""
    tracking = tracking_for(out)
    return tracking, open_run(tracking, "eval", params, {"layerflow.stage": "eval"}, parent_run_id=parent_run_id)


@task(cache_policy=NO_CACHE)
def log_eval_results(tracking: Tracking, run_id: str, rows: list[dict], report_dir: Path) -> str:
    """Finite table values as ``<method>.<column>`` metrics, the report folder as artifacts; returns its artifact URI."""
    now = int(time.time() * 1000)
    metrics = [Metric(f"{row['method']}.{k}", v, now, 0) for row in rows for k, v in row.items()
               if k != "method" and v == v and abs(v) != float("inf")]
    client = tracking.client()
    client.log_batch(run_id, metrics=metrics)
    client.log_artifacts(run_id, str(report_dir))
    return client.get_run(run_id).info.artifact_uri


@task(cache_policy=NO_CACHE)
def publish_report(tracking: Tracking, run_id: str, rows: list[dict], markdown: str, report_dir: Path) -> None:
    """The comparison as a Prefect table artifact, the report as a markdown artifact (also in MLflow and on disk)."""
    write_text_atomic(report_dir / "report.md", markdown)
    tracking.client().log_artifact(run_id, str(report_dir / "report.md"))
    create_table_artifact(json_safe(rows), key="layerflow-eval-table", description="LayerFlow evaluation: mean scores")
    create_markdown_artifact(markdown, key="layerflow-eval-report", description="LayerFlow evaluation report")


@task(cache_policy=NO_CACHE)
def close_eval_run(tracking: Tracking, run_id: str, status: str) -> None:
    """End the eval run as FINISHED or FAILED."""
    close_run(tracking, run_id, status)
