"""Layer-separation metrics of a predicted :class:`LayeredClip` against the ground truth.

:func:`score_clip` scores one clip (a flat dict of floats, keys in :data:`METRIC_NAMES`);
:func:`summarize` averages over sequences; :func:`json_safe` makes the result writable as
strict JSON. The alpha-matte metrics live in :mod:`layerflow_model.matting_metrics`.

Conventions, for every function here: images are float arrays in [0, 1] (data range 1);
PSNR pools the squared error over the whole sequence (all frames, pixels and channels) and
is ``10 * log10(1 / MSE)`` dB, so identical inputs give ``+inf``; a metric that is undefined
for a clip (an empty region, a single frame) is ``NaN``.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from .clip import LayeredClip, composite, to_uint8
from .matting_metrics import (
    alpha_area_ratio,
    alpha_conn,
    alpha_dtssd,
    alpha_grad,
    alpha_iou,
    alpha_mad,
    alpha_mse,
)

METRIC_NAMES = (
    "alpha_mad", "alpha_mse", "alpha_grad", "alpha_conn", "alpha_dtssd", "alpha_iou",
    "alpha_area_ratio", "fg_psnr", "fg_ssim", "bg_psnr", "bg_ssim", "bg_hidden_psnr", "blend_psnr",
    "composite_mae", "warp_error", "dynamic_degree",
)  # fmt: skip


def _check_same_shape(pred: np.ndarray, true: np.ndarray, what: str) -> None:
    if pred.shape != true.shape:
        raise ValueError(f"{what} needs pred and true of one shape, got {pred.shape} and {true.shape}")


####################################################################################
# Fidelity: PSNR and SSIM
####################################################################################


def psnr(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of ``pred`` against ``true``, both (T, H, W, 3) or (T, H, W) in [0, 1].

    The MSE is pooled over every frame, pixel and channel (not a mean of per-frame PSNRs).
    ``mask`` (T, H, W) bool restricts it to those pixels, all channels. Returns ``+inf`` for
    identical inputs and ``NaN`` when the mask selects no pixel.
    """
    _check_same_shape(pred, true, "psnr")
    error = (np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)) ** 2
    if mask is not None:
        if mask.shape != true.shape[:3]:
            raise ValueError(f"psnr mask must be (T, H, W) = {true.shape[:3]}, got {mask.shape}")
        error = error[mask]  # (N, 3) or (N,)
        if error.size == 0:
            return float("nan")
    mse = float(error.mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def ssim(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004) of ``pred`` against ``true``, (T, H, W, 3) or (T, H, W) in [0, 1].

    Gaussian window 11 x 11 with sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1; computed per
    frame and channel and averaged over all frames, pixels and channels. In [-1, 1], 1 for
    identical inputs. Unlike the reference code, which averages only windows that fit inside
    the image, windows at the border see a reflected image, so frames under 11 pixels work.
    """
    _check_same_shape(pred, true, "ssim")
    c1, c2 = 0.01**2, 0.03**2

    def blur(image: np.ndarray) -> np.ndarray:  # (H, W[, 3]) -> same, Gaussian-weighted local mean
        return cv2.GaussianBlur(image, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    maps = []
    for x, y in zip(np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)):
        mu_x, mu_y = blur(x), blur(y)
        var_x = blur(x * x) - mu_x**2
        var_y = blur(y * y) - mu_y**2
        cov = blur(x * y) - mu_x * mu_y
        numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
        denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        maps.append(numerator / denominator)  # (H, W[, 3])
    return float(np.mean(maps))


def composite_mae(clip: LayeredClip) -> float:
    """Mean |blend - (alpha * fg + (1 - alpha) * bg)| of one clip's own layers, in [0, 1].

    0 means the clip's blend is exactly the composite of its foreground over its background.
    """
    clip.require("fg", "alpha", "bg", "blend", purpose="composite_mae")
    recomposed = composite(clip.fg, clip.alpha, clip.bg)  # (T, H, W, 3)
    return float(np.mean(np.abs(clip.blend - recomposed), dtype=np.float64))


####################################################################################
# Temporal: Farneback flow of the clip itself
####################################################################################


def farneback_flow(frames: np.ndarray) -> np.ndarray:
    """Dense optical flow between consecutive frames of one video, OpenCV Farneback.

    frames: (T, H, W, 3) RGB in [0, 1], converted to 8-bit grey. Returns (T - 1, H, W, 2) in
    pixels, (dx, dy): pixel (x, y) of frame t is found at (x + dx, y + dy) in frame t + 1.
    Parameters: pyramid scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5, sigma 1.2.
    """
    grey = [cv2.cvtColor(to_uint8(frame), cv2.COLOR_RGB2GRAY) for frame in frames]  # T x (H, W)
    flows = [cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0) for a, b in zip(grey[:-1], grey[1:])]
    return np.stack(flows) if flows else np.zeros((0, *frames.shape[1:3], 2), dtype=np.float32)


def warp_error(frames: np.ndarray, flow: np.ndarray) -> float:
    """Mean |frame_t - warp(frame_t+1)| in [0, 1]: what the motion does not explain.

    frames: (T, H, W, 3) in [0, 1]; flow: (T - 1, H, W, 2) from :func:`farneback_flow` of
    the same frames. Frame t + 1 is warped back to t (bilinear); pixels whose flow leaves the
    frame are skipped, occlusions are not masked. Pooled over all pairs, pixels and channels;
    NaN for a single frame or when no pixel stays inside.
    """
    frames = np.asarray(frames, dtype=np.float32)
    height, width = frames.shape[1:3]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    errors = []
    for current, following, motion in zip(frames[:-1], frames[1:], flow):
        map_x, map_y = grid_x + motion[..., 0], grid_y + motion[..., 1]
        warped = cv2.remap(following, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        errors.append(np.abs(current - warped)[inside])  # (N, 3)
    pooled = np.concatenate(errors) if errors else np.empty(0)
    return float(pooled.mean(dtype=np.float64)) if pooled.size else float("nan")


def dynamic_degree(flow: np.ndarray) -> float:
    """Mean optical-flow magnitude in pixels per frame (>= 0; 0 is a still video).

    flow: (T - 1, H, W, 2) from :func:`farneback_flow`; NaN when there is no frame pair.
    Measured at the clip's own resolution, so compare clips of one size. Unlike VBench's
    dynamic degree (the fraction of videos whose largest RAFT flows pass a threshold), this
    is a per-clip magnitude.
    """
    if len(flow) == 0:
        return float("nan")
    return float(np.linalg.norm(flow, axis=-1).mean(dtype=np.float64))


####################################################################################
# One clip, many sequences
####################################################################################


def score_clip(pred: LayeredClip, gt: LayeredClip) -> dict[str, float]:
    """Every metric of :data:`METRIC_NAMES` for one predicted clip against its ground truth.

    Both clips need all four layers and the same (T, H, W), else ``ValueError`` naming them.
    alpha_*: see :mod:`layerflow_model.matting_metrics` (mad/mse x 1e3, dtssd x 1e2, IoU at
    alpha > 0.5, area_ratio 1 when the matte shows at the true size and opacity, 0 when faint).
    fg_*: PSNR/SSIM of the premultiplied foreground ``fg * alpha``. bg_*: PSNR/SSIM of the
    background; bg_hidden_psnr only where the ground-truth alpha > 0.5 (NaN if no such pixel).
    blend_psnr: the blend. composite_mae: :func:`composite_mae` of ``pred``.
    warp_error and dynamic_degree describe ``pred.blend`` alone, with Farneback flow computed
    on ``pred.blend`` itself (no ground truth needed, so text-to-video samples score the same
    way); a perfect prediction scores what the ground truth scores, not 0.
    """
    pred.require("fg", "alpha", "bg", "blend", purpose="score_clip's pred")
    gt.require("fg", "alpha", "bg", "blend", purpose="score_clip's gt")
    if pred.alpha.shape != gt.alpha.shape:
        raise ValueError(
            f"score_clip needs pred and gt of one (T, H, W): pred is {pred.alpha.shape}, gt is {gt.alpha.shape}"
        )
    pred_fg, gt_fg = pred.fg_premultiplied(), gt.fg_premultiplied()
    flow = farneback_flow(pred.blend)  # (T-1, H, W, 2)
    return {
        "alpha_mad": alpha_mad(pred.alpha, gt.alpha),
        "alpha_mse": alpha_mse(pred.alpha, gt.alpha),
        "alpha_grad": alpha_grad(pred.alpha, gt.alpha),
        "alpha_conn": alpha_conn(pred.alpha, gt.alpha),
        "alpha_dtssd": alpha_dtssd(pred.alpha, gt.alpha),
        "alpha_iou": alpha_iou(pred.alpha, gt.alpha),
        "alpha_area_ratio": alpha_area_ratio(pred.alpha, gt.alpha),
        "fg_psnr": psnr(pred_fg, gt_fg),
        "fg_ssim": ssim(pred_fg, gt_fg),
        "bg_psnr": psnr(pred.bg, gt.bg),
        "bg_ssim": ssim(pred.bg, gt.bg),
        "bg_hidden_psnr": psnr(pred.bg, gt.bg, mask=gt.alpha > 0.5),
        "blend_psnr": psnr(pred.blend, gt.blend),
        "composite_mae": composite_mae(pred),
        "warp_error": warp_error(pred.blend, flow),
        "dynamic_degree": dynamic_degree(flow),
    }


def _finite_aware_mean(values: list[float]) -> float:
    """Mean skipping NaN and +-inf; all-inf of one sign gives that inf, nothing left gives NaN."""
    defined = [v for v in values if not math.isnan(v)]
    finite = [v for v in defined if math.isfinite(v)]
    if finite:
        return float(np.mean(finite))
    if defined and len(set(defined)) == 1:
        return defined[0]
    return float("nan")


def summarize(per_sequence: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Average per-sequence scores: ``{"mean": {metric: float}, "per_sequence": {name: {metric: float}}}``.

    Every sequence must hold the same metric names (``ValueError`` otherwise, or when there
    is no sequence). Each mean is over the sequences where the metric is finite: NaN
    (undefined) and inf (a perfect PSNR) are left out, so a mean PSNR describes the imperfect
    sequences. Only when every defined value is the same inf is the mean that inf; when
    none is defined it is NaN. ``per_sequence`` keeps the values as given.
    """
    if not per_sequence:
        raise ValueError("summarize needs at least one sequence")
    names = list(next(iter(per_sequence.values())))
    for sequence, scores in per_sequence.items():
        if set(scores) != set(names):
            raise ValueError(
                f"summarize: sequence {sequence!r} has metrics {sorted(scores)}, others have {sorted(names)}"
            )
    return {
        "mean": {m: _finite_aware_mean([float(s[m]) for s in per_sequence.values()]) for m in names},
        "per_sequence": {seq: {m: float(v) for m, v in scores.items()} for seq, scores in per_sequence.items()},
    }


def json_safe(value: Any) -> Any:
    """A copy of nested dicts/lists of numbers that strict JSON accepts.

    inf, -inf and NaN become the strings "inf", "-inf" and "nan"; numpy scalars become
    Python numbers; dict keys become strings. ``json.dumps(json_safe(x), allow_nan=False)``
    then succeeds.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    return value
