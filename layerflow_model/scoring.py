"""Scoring folders of layered sequences, and comparing the scores of several methods.

Folder scoring: a prediction folder and a ground-truth folder, both in the official
LayerFlow layout (``SEQ/{fg,mask,bg,bl}/NNNN.png``, see :mod:`layerflow_model.layerflow_folder`),
are paired sequence by sequence and scored with :func:`layerflow_model.metrics.score_clip`;
:func:`score_folders` returns ``{"mean": {metric: float}, "per_sequence": {SEQ: {metric: float}}}``
(:func:`layerflow_model.metrics.summarize`) with exactly the keys of :data:`METRIC_NAMES`.

Comparison: :func:`comparison_rows`, :func:`plot_metric` and :func:`report_markdown` turn the
summaries of several methods (model tasks, baselines) into a table, one bar chart per metric
and a markdown report; :func:`hardest_sequences` picks the clips a mean hides. Plain files
only: the callers in ``tasks/`` log them to MLflow and Prefect.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .layerflow_folder import FG_MATTE_GREY, LAYER_FOLDERS, layerflow_sequence_dirs, read_layerflow_sequence
from .metrics import METRIC_NAMES, json_safe, score_clip, summarize
from .video_io import PathLike, atomic_output, frame_paths, write_text_atomic

# How a folder's fg/ frames store colour -> the grey they sit on (None: straight colour).
FG_CONVENTIONS: dict[str, float | None] = {"grey": FG_MATTE_GREY, "straight": None, "black": 0.0}

# Which way each metric improves: True when higher is better.
HIGHER_IS_BETTER = {
    "alpha_mad": False, "alpha_mse": False, "alpha_grad": False, "alpha_conn": False, "alpha_dtssd": False,
    "alpha_iou": True, "fg_psnr": True, "fg_ssim": True, "bg_psnr": True, "bg_ssim": True,
    "bg_hidden_psnr": True, "blend_psnr": True, "composite_mae": False, "warp_error": False,
    "dynamic_degree": True,
}  # fmt: skip
RIGHT_AT_ONE = ("alpha_area_ratio",)  # metrics for which neither way is better: 1 is right


def fg_matte_for(convention: str) -> float | None:
    """``"grey"`` (official), ``"straight"`` or ``"black"`` -> the ``fg_matte`` of the folder readers."""
    if convention not in FG_CONVENTIONS:
        raise ValueError(f"fg convention must be one of {sorted(FG_CONVENTIONS)}, got {convention!r}")
    return FG_CONVENTIONS[convention]


####################################################################################
# Scoring two folders
####################################################################################


def paired_sequences(pred_root: PathLike, gt_root: PathLike) -> list[tuple[str, Path, Path]]:
    """``(name, pred_dir, gt_dir)`` for every ground-truth sequence, sorted by name.

    Raises ``ValueError`` when the ground truth holds no sequence, or when a sequence is
    in one folder and not the other (each such name is listed).
    """
    pred = {d.name: d for d in layerflow_sequence_dirs(pred_root)}
    gt = {d.name: d for d in layerflow_sequence_dirs(gt_root)}
    if not gt:
        raise ValueError(f"ground truth {gt_root} holds no LayerFlow sequences (sub-folders with fg/, mask/, bg/, bl/)")
    missing, extra = sorted(set(gt) - set(pred)), sorted(set(pred) - set(gt))
    if missing or extra:
        raise ValueError(
            f"prediction {pred_root} and ground truth {gt_root} hold different sequences: "
            f"missing from the prediction {missing}, without ground truth {extra}"
        )
    return [(name, pred[name], gt[name]) for name in sorted(gt)]


def _frame_names(seq_dir: Path) -> list[str]:
    """Frame names (stems) of a sequence's mask/ folder (the reader checks the other layers agree)."""
    return [p.stem for p in frame_paths(seq_dir / LAYER_FOLDERS["alpha"])]


def score_sequence(
    pred_dir: PathLike, gt_dir: PathLike, pred_fg_matte: float | None = FG_MATTE_GREY,
    gt_fg_matte: float | None = FG_MATTE_GREY,
) -> dict[str, float]:
    """:func:`score_clip` of one predicted sequence folder against its ground truth.

    ``*_fg_matte``: the grey under each folder's fg/ frames (:data:`FG_CONVENTIONS`). Raises
    ``ValueError`` naming the sequence when a layer folder is missing, the frame names differ
    between the two folders, or the frame sizes differ.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    pred = read_layerflow_sequence(pred_dir, fg_matte=pred_fg_matte)  # checks all four layers agree
    gt = read_layerflow_sequence(gt_dir, fg_matte=gt_fg_matte)
    pred_names, gt_names = _frame_names(pred_dir), _frame_names(gt_dir)
    if pred_names != gt_names:
        raise ValueError(
            f"sequence {gt_dir.name!r}: the prediction has {len(pred_names)} frames and the ground truth "
            f"{len(gt_names)}; missing from the prediction: {sorted(set(gt_names) - set(pred_names))[:5]}, "
            f"not in the ground truth: {sorted(set(pred_names) - set(gt_names))[:5]}"
        )
    if pred.size != gt.size:
        (ph, pw), (gh, gw) = pred.size, gt.size
        raise ValueError(f"sequence {gt_dir.name!r}: prediction frames are {ph}x{pw} (HxW), ground truth {gh}x{gw}")
    return score_clip(pred, gt)


def score_folders(
    pred_root: PathLike, gt_root: PathLike, pred_fg_matte: float | None = FG_MATTE_GREY,
    gt_fg_matte: float | None = FG_MATTE_GREY,
) -> dict[str, dict]:
    """Score every sequence of ``pred_root`` against ``gt_root``: ``{"mean", "per_sequence"}``.

    Sequences are read one pair at a time (about 0.5 GB for a 16-frame 480x720 pair).
    Errors as :func:`paired_sequences` and :func:`score_sequence`.
    """
    pairs = paired_sequences(pred_root, gt_root)
    return summarize({name: score_sequence(p, g, pred_fg_matte, gt_fg_matte) for name, p, g in pairs})


def write_scores(path: PathLike, scores: Mapping) -> Path:
    """Write scores as strict JSON (inf/NaN as the strings "inf"/"nan"), atomically; returns the path."""
    return write_text_atomic(path, json.dumps(json_safe(scores), indent=2, allow_nan=False) + "\n")


####################################################################################
# Comparing methods
####################################################################################


def comparison_rows(summaries: Mapping[str, Mapping[str, Mapping[str, float]]],
                    extra: Mapping[str, Mapping[str, float]] | None = None) -> list[dict]:
    """One row per method: ``{"method": name, <metric>: mean, ...}``, methods in the given order.

    summaries: ``{method: summarize(...) output}``; extra: optional further columns per
    method (e.g. prompt-adherence accuracies), a method without them gets NaN. Values are
    plain floats (NaN and inf kept; :func:`json_safe` before writing JSON).
    """
    extra = extra or {}
    extra_names = sorted({name for columns in extra.values() for name in columns})
    return [
        {"method": method, **{m: float(s["mean"][m]) for m in METRIC_NAMES},
         **{n: float(extra.get(method, {}).get(n, math.nan)) for n in extra_names}}
        for method, s in summaries.items()
    ]


def plot_metric(path: PathLike, metric: str, rows: Sequence[Mapping]) -> Path:
    """Write a PNG bar chart of one column of :func:`comparison_rows`, one bar per method.

    NaN (undefined) and inf (perfect PSNR) values have no bar and are labelled instead. The
    title says which way is better for the metrics of :data:`HIGHER_IS_BETTER`, and that 1 is
    right for those of :data:`RIGHT_AT_ONE`.
    """
    methods = [str(row["method"]) for row in rows]
    values = np.array([float(row[metric]) for row in rows])  # (M,)
    finite = np.isfinite(values)
    figure = Figure(figsize=(1.2 + 0.9 * len(rows), 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.bar(np.arange(len(rows))[finite], values[finite], color="tab:blue")
    for index, value in enumerate(values):
        label = f"{value:.3g}" if np.isfinite(value) else ("nan" if np.isnan(value) else f"{value}")
        axes.annotate(label, (index, value if np.isfinite(value) else 0.0), ha="center", va="bottom", fontsize=8)
    axes.set_xticks(range(len(rows)), methods, rotation=30, ha="right", fontsize=8)
    better = {True: " (higher is better)", False: " (lower is better)"}.get(HIGHER_IS_BETTER.get(metric), "")
    better = " (1 is right)" if metric in RIGHT_AT_ONE else better
    axes.set_title(metric + better, fontsize=9)
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")
    return Path(path)


def hardest_sequences(per_sequence: Mapping[str, Mapping[str, float]], metric: str,
                      count: int) -> list[tuple[str, float]]:
    """The ``count`` sequences scoring worst on ``metric``, worst first: ``[(name, value), ...]``.

    per_sequence: ``score_folders(...)["per_sequence"]``. Worst follows :data:`HIGHER_IS_BETTER`;
    ties go by name; NaN (undefined) and infinite (perfect) values are left out; a metric on which
    every other sequence scores the same (a given layer returned exactly, say) gives ``[]``.
    """
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"metric must be one of {sorted(HIGHER_IS_BETTER)}, got {metric!r}")
    values = {name: float(scores[metric]) for name, scores in per_sequence.items() if math.isfinite(scores[metric])}
    if len(set(values.values())) <= 1:
        return []
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    return sorted(values.items(), key=lambda item: (sign * item[1], item[0]))[:count]


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def report_markdown(title: str, rows: Sequence[Mapping], plots: Mapping[str, str], notes: Sequence[str] = (),
                    hardest: Sequence[Mapping] = ()) -> str:
    """A markdown report: the comparison table, one image per metric, then the hardest clips.

    rows: :func:`comparison_rows`; plots: ``{metric: image URI}`` in the order to show them;
    notes: bullet lines under the title (data set, model, sampling settings); hardest: rows of
    ``{"method", "metric", "sequence", "value", "prompt", "preview"}`` (preview: an image URI).
    """
    columns = list(rows[0]) if rows else ["method"]
    lines = [f"# {title}", "", *[f"- {note}" for note in notes], ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    lines += ["", "## Per metric", ""]
    lines += [f"![{metric}]({uri})" for metric, uri in plots.items()]
    if hardest:
        lines += ["", "## Hardest clips", "", "Per method, the clips that score worst on each headline metric, "
                  "with the ground truth beside the prediction.", "",
                  "| method | metric | clip | value | foreground prompt | preview |", "|" + " --- |" * 6]
        lines += [f"| {h['method']} | {h['metric']} | {h['sequence']} | {_cell(h['value'])} | {h['prompt']} | "
                  f"[preview]({h['preview']}) |" for h in hardest]
    return "\n".join(lines) + "\n"
