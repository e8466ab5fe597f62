"""Alpha-matte metrics of a predicted alpha video against the ground truth.

Every function takes ``pred`` and ``true`` alpha videos of shape (T, H, W), float in [0, 1],
and returns one float for the whole sequence.

MAD, MSE, gradient, connectivity and dtSSD follow the RobustVideoMatting evaluation
(github PeterL1n/RobustVideoMatting, ``evaluation/evaluate_lr.py`` at commit 17d1774,
classes MetricMAD, MetricMSE, MetricGRAD, MetricCONN, MetricDTSSD): the same per-frame
formulas and scale factors, averaged over frames as its spreadsheet does. Where we depart
from it, the function's docstring says so.
"""

from __future__ import annotations

import cv2
import numpy as np


def _as_alpha_pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both alphas as float32 (T, H, W) arrays; ``ValueError`` if the shapes disagree."""
    pred = np.asarray(pred, dtype=np.float32)
    true = np.asarray(true, dtype=np.float32)
    if pred.ndim != 3 or pred.shape != true.shape:
        raise ValueError(f"alpha metrics need pred and true of one (T, H, W) shape, got {pred.shape} and {true.shape}")
    return pred, true


def alpha_mad(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute difference x 1e3 (RVM MetricMAD), >= 0; 0 means identical.

    The mean runs over all frames and pixels, which equals RVM's mean of per-frame means.
    """
    pred, true = _as_alpha_pair(pred, true)
    return float(np.mean(np.abs(pred - true), dtype=np.float64) * 1e3)


def alpha_mse(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean squared error x 1e3 (RVM MetricMSE), >= 0; 0 means identical."""
    pred, true = _as_alpha_pair(pred, true)
    return float(np.mean((pred - true) ** 2, dtype=np.float64) * 1e3)


def _gauss_gradient_filters(sigma: float, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """The x and y derivative-of-Gaussian filters of RVM's MetricGRAD, each of unit L2 norm.

    For sigma 1.4 they are 9 x 9. Returns (filter_x, filter_y), filter_y = filter_x.T.
    """
    half = np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * epsilon)))
    offsets = np.arange(-half, half + 1)
    gauss = np.exp(-(offsets**2) / (2.0 * sigma**2)) / (sigma * np.sqrt(2.0 * np.pi))
    dgauss = -offsets * gauss / sigma**2
    filter_x = np.outer(gauss, dgauss)  # rows smooth along y, columns differentiate along x
    filter_x /= np.sqrt((filter_x**2).sum())
    return filter_x, filter_x.T


def alpha_grad(pred: np.ndarray, true: np.ndarray, sigma: float = 1.4) -> float:
    """Gradient error (RVM MetricGRAD of ``evaluate_lr.py``), >= 0; 0 means identical gradients.

    Per frame: min-max normalise each alpha to [0, 1] (``cv2.normalize``, NORM_MINMAX; a
    constant frame becomes all 0), take the magnitude of its derivative-of-Gaussian gradient
    (sigma 1.4, 9 x 9 filters of unit L2 norm, replicated border), and sum the squared
    difference of the two magnitudes over all pixels, divided by 1000. The result is the mean
    of that over frames. Being a sum over pixels, it grows with the frame size.

    Against the Adobe/DIM matlab ``compute_gradient_loss`` (same normalisation and filters):
    the sum runs over the whole frame instead of the trimap's unknown region, and is divided
    by 1000. RVM's ``evaluate_hr.py`` skips the min-max normalisation; we follow
    ``evaluate_lr.py``. We sum in float64 where RVM sums in float32.
    """
    pred, true = _as_alpha_pair(pred, true)
    filter_x, filter_y = _gauss_gradient_filters(sigma)

    def gradient_magnitude(frame: np.ndarray) -> np.ndarray:  # (H, W) -> (H, W), >= 0
        normed = cv2.normalize(np.ascontiguousarray(frame), None, 1.0, 0.0, cv2.NORM_MINMAX)
        gx = cv2.filter2D(normed, -1, filter_x, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.filter2D(normed, -1, filter_y, borderType=cv2.BORDER_REPLICATE)
        return np.sqrt(gx**2 + gy**2)

    per_frame = [
        np.sum((gradient_magnitude(t) - gradient_magnitude(p)).astype(np.float64) ** 2) / 1000
        for p, t in zip(pred, true)
    ]
    return float(np.mean(per_frame))


def alpha_conn(pred: np.ndarray, true: np.ndarray, step: float = 0.1) -> float:
    """Connectivity error (RVM MetricCONN), >= 0; 0 means identical connectivity.

    Per frame, for thresholds 0.1, 0.2, ..., 1.0: the largest 4-connected component of
    ``(true >= th) & (pred >= th)``; each pixel's level ``l`` is the threshold just below the
    first one at which it leaves that component (1 if it never does). With ``d = alpha - l``,
    ``phi = 1 - d * (d >= 0.15)``; the frame's error is ``sum |phi_true - phi_pred| / 1000``.
    The result is the mean over frames; as a sum over pixels it grows with the frame size.

    Thresholds are compared in float32, as RVM's float32 arrays did under numpy 1 (under
    numpy 2 its float64 ``np.arange`` thresholds would put an alpha of exactly 0.7 below 0.7).
    Against the matlab ``compute_connectivity_error``: the sum runs over the whole frame
    instead of the trimap's unknown region, is divided by 1000, and ties between equally
    large components go to the first in row-major order (matlab: column-major).
    """
    pred, true = _as_alpha_pair(pred, true)
    num_steps = int(round(1.0 / step))
    thresholds = np.linspace(0.0, 1.0, num_steps + 1).astype(np.float32)  # [0, 0.1, ..., 1]

    def frame_error(p: np.ndarray, t: np.ndarray) -> float:  # (H, W), (H, W) -> float
        level = np.full(t.shape, -1.0, dtype=np.float32)  # -1: not yet assigned
        for i in range(1, len(thresholds)):
            both = ((t >= thresholds[i]) & (p >= thresholds[i])).astype(np.uint8)
            count, labels, stats, _ = cv2.connectedComponentsWithStats(both, connectivity=4)
            largest = np.zeros(t.shape, dtype=bool)
            if count > 1:  # label 0 is the background
                largest = labels == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])
            level[(level == -1) & ~largest] = thresholds[i - 1]
        level[level == -1] = 1.0
        t_diff, p_diff = t - level, p - level
        t_phi = 1 - t_diff * (t_diff >= 0.15)
        p_phi = 1 - p_diff * (p_diff >= 0.15)
        return float(np.sum(np.abs(t_phi - p_phi), dtype=np.float64) / 1000)

    return float(np.mean([frame_error(p, t) for p, t in zip(pred, true)]))


def alpha_dtssd(pred: np.ndarray, true: np.ndarray) -> float:
    """Temporal coherence error dtSSD x 1e2 (RVM MetricDTSSD), >= 0; NaN for a 1-frame clip.

    For each pair of consecutive frames: ``sqrt(sum(((p_t - p_t-1) - (g_t - g_t-1))^2) / (H*W))
    * 100``; the result is the mean over the T - 1 pairs. RVM's spreadsheet also averages in
    a 0 for the first frame, so its clip value is ours x (T - 1) / T.
    """
    pred, true = _as_alpha_pair(pred, true)
    if len(pred) < 2:
        return float("nan")
    change_error = np.diff(pred, axis=0) - np.diff(true, axis=0)  # (T-1, H, W)
    per_pair = np.sqrt(np.sum(change_error.astype(np.float64) ** 2, axis=(1, 2)) / true[0].size) * 1e2
    return float(per_pair.mean())


def alpha_iou(pred: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of ``alpha > threshold``, pooled over all frames, in [0, 1].

    1 means the same masks; when both masks are empty in every frame the IoU is defined as 1.
    """
    pred, true = _as_alpha_pair(pred, true)
    pred_mask, true_mask = pred > threshold, true > threshold
    union = np.count_nonzero(pred_mask | true_mask)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred_mask & true_mask) / union)


def alpha_area_ratio(pred: np.ndarray, true: np.ndarray) -> float:
    """Area where ``pred`` reaches half the true matte's peak, over the true area at that level, pooled
    over all frames, in [0, inf); NaN when the true matte is empty.

    1 when the object shows at its size and opacity (a translucent one at its own opacity), wherever it
    is; 0 when the prediction is faint or empty; above 1 when it is too large. Not from
    RobustVideoMatting: it is for generated clips, whose object may sit anywhere the prompt allows (so
    IoU and MAD against one true placement say little), and whose matte, when the model regresses to
    the mean over placements, is a faint spread-out blob.
    """
    pred, true = _as_alpha_pair(pred, true)
    level = 0.5 * float(true.max())
    if level <= 0:
        return float("nan")
    return float(np.count_nonzero(pred >= level) / np.count_nonzero(true >= level))
