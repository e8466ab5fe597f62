"""Shared by the sampling benchmarks: the model they score, and the mean of the evaluation's metrics."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from layerflow_model import LayeredClip, LayerFlowPipeline
from layerflow_model.metrics import score_clip
from layerflow_model.shipped import shipped_model_dir

from checkpoint_clips import checkpoint_pipeline  # beside this script


def saved_pipeline(model: Path | None) -> LayerFlowPipeline:
    """A saved pipeline folder (None: the shipped model), loaded for scoring: its progress bar off."""
    pipe = LayerFlowPipeline.from_pretrained(model or shipped_model_dir())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_to_score(run: Path | None, step: int | None, average: bool,
                      model: Path | None) -> tuple[LayerFlowPipeline, str]:
    """The pipeline to score and what it is: a checkpoint of run ``run`` (a ``quality_vs_steps.py --out`` folder or a
    ``layerflow train-stage`` base stage folder) at ``step`` (None: the last kept; ``average``: its moving average),
    built as its stage built it (from its ``init_from`` model, if any), else :func:`saved_pipeline` of ``model``.
    ``ValueError`` naming the steps the run kept."""
    if run is None:
        return saved_pipeline(model), str(model or shipped_model_dir())
    pipe, step, weights = checkpoint_pipeline(run, step, average)
    return pipe, f"{weights} (step {step})"


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--run`` or ``--model`` (the model to score), and ``--step`` and ``--average`` (which of a run's weights)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", type=Path, help="a quality_vs_steps.py --out folder, or a train-stage base stage "
                        "folder (OUT/base/<key>)")
    source.add_argument("--model", type=Path, help="saved pipeline folder (default: the shipped model)")
    parser.add_argument("--step", type=int, default=None, help="the run's checkpoint step (default: the last kept)")
    parser.add_argument("--average", action="store_true", help="the run's moving average (ema.safetensors)")


def pipeline_from_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[LayerFlowPipeline, str]:
    """:func:`pipeline_to_score` of the :func:`add_model_options` in ``args``; a bad choice exits through
    ``parser.error`` with what is wrong."""
    if args.run is None and (args.step is not None or args.average):
        parser.error("--step and --average pick a checkpoint of --run")
    try:
        return pipeline_to_score(args.run, args.step, args.average, args.model)
    except ValueError as error:
        parser.error(str(error))


def mean_scores(clips: Sequence[LayeredClip], truths: Sequence[LayeredClip], metrics: Sequence[str]) -> dict[str, float]:
    """Plain mean over the clips of each of ``metrics`` (:func:`~layerflow_model.metrics.score_clip` of each
    clip against its true layers; an inf or NaN clip makes its metric's mean inf or NaN)."""
    per_clip = [score_clip(clip, truth) for clip, truth in zip(clips, truths, strict=True)]
    return {name: float(np.mean([scores[name] for scores in per_clip])) for name in metrics}
