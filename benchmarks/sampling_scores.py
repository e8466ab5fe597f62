"""Shared by the sampling benchmarks: the saved model they score, and the mean of the evaluation's metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from layerflow_model import LayeredClip, LayerFlowPipeline
from layerflow_model.metrics import score_clip
from layerflow_model.shipped import shipped_model_dir


def saved_pipeline(model: Path | None) -> LayerFlowPipeline:
    """A saved pipeline folder (None: the shipped model), loaded for scoring: its progress bar off."""
    pipe = LayerFlowPipeline.from_pretrained(model or shipped_model_dir())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def mean_scores(clips: Sequence[LayeredClip], truths: Sequence[LayeredClip], metrics: Sequence[str]) -> dict[str, float]:
    """Plain mean over the clips of each of ``metrics`` (:func:`~layerflow_model.metrics.score_clip` of each
    clip against its true layers; an inf or NaN clip makes its metric's mean inf or NaN)."""
    per_clip = [score_clip(clip, truth) for clip, truth in zip(clips, truths, strict=True)]
    return {name: float(np.mean([scores[name] for scores in per_clip])) for name in metrics}
