"""Quality curves of ``quality_vs_steps.py`` as plots and tables: one run's curve, or several runs' on one figure.

A curve is a list of points ``{"step": int, "<metric>": float, ...}`` (``ema_<metric>`` for the
moving average of the weights, when the run kept one); a :class:`Series` names one line of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from layerflow_model.scoring import HIGHER_IS_BETTER as SCORING_HIGHER_IS_BETTER
from layerflow_model.video_io import atomic_output

CURVE_METRICS = ("alpha_iou", "alpha_mad", "bg_psnr", "fg_psnr", "composite_mae", "oracle_accuracy")
HIGHER_IS_BETTER = SCORING_HIGHER_IS_BETTER | {"oracle_accuracy": True}
DECIMALS = {"alpha_iou": 3, "alpha_mad": 1, "bg_psnr": 2, "fg_psnr": 2, "composite_mae": 3, "oracle_accuracy": 2}
BASELINE_COLOURS = {"median": "tab:orange", "classical": "tab:green", "ground_truth": "tab:grey"}
OWN_BASELINE_STYLES = {"median": ":", "classical": "--", "ground_truth": "-."}
SERIES_STYLES = (("tab:blue", "o"), ("tab:purple", "s"), ("tab:red", "^"), ("tab:brown", "D"),
                 ("tab:pink", "v"), ("tab:olive", "P"), ("tab:cyan", "X"))
AVERAGE_PREFIX = "ema_"


@dataclass(frozen=True)
class Series:
    """One line of a plot: ``points`` of a curve, read with ``prefix`` (``"ema_"``: the moving average)."""

    label: str
    points: Sequence[Mapping[str, float]]
    prefix: str = ""

    def values(self, metric: str) -> dict[int, float]:
        """Step -> value of ``metric`` at the points that have a finite one."""
        key = self.prefix + metric
        return {int(p["step"]): float(p[key]) for p in self.points if key in p and math.isfinite(p[key])}


def series_of(label: str, curve: Sequence[Mapping[str, float]], average_label: str | None = None) -> list[Series]:
    """The last weights' series and, when the curve has ``ema_`` metrics, the moving average's
    (labelled ``average_label``, default ``"<label> average"``)."""
    series = [Series(label, curve)]
    if curve and any(key.startswith(AVERAGE_PREFIX) for key in curve[0]):
        series.append(Series(average_label or f"{label} average", curve, AVERAGE_PREFIX))
    return series


def plot_curves(path: Path, series: Sequence[Series], baselines: Mapping[str, Mapping[str, float]], title: str,
                own_baselines: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None) -> Path:
    """One panel per curve metric against steps, a line per series; baselines (and, for oracle accuracy,
    the ground truth) as dashed horizontal lines. ``own_baselines`` (series label -> its baselines) is for
    runs scored on different held-out clips: each run's baselines are drawn in its series' colour instead
    (median dotted, classical dashed, ground truth dash-dotted). Writes a PNG to ``path`` (whole or not at
    all) and returns it."""
    figure = Figure(figsize=(12, 6.5), dpi=100)
    FigureCanvasAgg(figure)
    for index, metric in enumerate(CURVE_METRICS):
        axes = figure.add_subplot(2, 3, index + 1)
        for (colour, marker), line in zip(SERIES_STYLES, series, strict=False):
            values = line.values(metric)
            axes.plot(np.array(list(values)), np.array(list(values.values())), f"{marker}-", color=colour,
                      label=line.label)
            for name, scores in (own_baselines or {}).get(line.label, {}).items():
                if metric in scores and math.isfinite(scores[metric]):
                    axes.axhline(scores[metric], linestyle=OWN_BASELINE_STYLES[name], color=colour, linewidth=1)
        for name, scores in baselines.items():
            if metric in scores and math.isfinite(scores[metric]):
                axes.axhline(scores[metric], linestyle="--", color=BASELINE_COLOURS[name], label=name)
        better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
        axes.set_title(f"{metric} ({better} is better)", fontsize=9)
        axes.set_xlabel("training step", fontsize=8)
        if not own_baselines or index == 0:  # own baselines: one legend of the runs; the title names the styles
            axes.legend(fontsize=7)
    if own_baselines:
        title += ("\neach run's baselines on its own clips, in its colour: median dotted, classical dashed, "
                  "ground truth dash-dotted")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")
    return Path(path)


def metric_cell(metric: str, value: float | None) -> str:
    """A table cell: ``value`` to the metric's decimals, or a dash for no value."""
    return "-" if value is None else f"{value:.{DECIMALS[metric]}f}"


def markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A Markdown table of a header row and body rows of cells."""
    return "\n".join([f"| {' | '.join(header)} |", f"|{' --- |' * len(header)}"]
                     + [f"| {' | '.join(cells)} |" for cells in body])


def markdown_table(series: Sequence[Series], metrics: Sequence[str], steps: Sequence[int]) -> str:
    """A Markdown table: a row per step, a column per (series, metric); a dash where a series has no point."""
    header = ["steps"] + [f"{line.label}: {metric}" for line in series for metric in metrics]
    return markdown(header, [[f"{step:,}"] + [metric_cell(metric, line.values(metric).get(step))
                                              for line in series for metric in metrics] for step in steps])


def baseline_table(baselines: Mapping[str, Mapping[str, Mapping[str, float]]], metrics: Sequence[str]) -> str:
    """A Markdown table of each run's baselines (run label -> baseline name -> metric -> value): a row per
    run and baseline that has a score in any of them, a column per metric; a dash where it has none."""
    return markdown(["run", "baseline", *metrics],
                    [[label, name, *(metric_cell(m, values.get(m)) for m in metrics)]
                     for label, scores in baselines.items() for name, values in scores.items()
                     if any(m in values for m in metrics)])
