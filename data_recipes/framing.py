"""Fitting source frames to a clip's shape: resize to cover, centre-crop, pick frames."""

from __future__ import annotations

import cv2
import numpy as np

from layerflow_model.clip import premultiply, unpremultiply


def fit_frames(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize frames to cover ``size`` = (H, W) and centre-crop to it; None keeps them.

    frames: (T, H, W) or (T, H, W, C) with C <= 4, float32. Downscaling uses area
    averaging, upscaling bilinear. Returns (T, H', W'[, C]) float32.
    """
    if size is None or frames.shape[1:3] == tuple(size):
        return frames
    out_h, out_w = size
    in_h, in_w = frames.shape[1:3]
    scale = max(out_h / in_h, out_w / in_w)
    new_h, new_w = max(out_h, round(in_h * scale)), max(out_w, round(in_w * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    resized = [cv2.resize(frame, (new_w, new_h), interpolation=interpolation) for frame in frames]
    return np.stack(resized)[:, top:top + out_h, left:left + out_w].astype(np.float32)


def fit_foreground(fg: np.ndarray, alpha: np.ndarray, size: tuple[int, int] | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_frames` for a straight foreground (T, H, W, 3) and its alpha (T, H, W).

    Resamples the premultiplied colour, so transparent pixels do not bleed dark
    fringes into the edges; returns straight colour and alpha, float32 in [0, 1].
    """
    if size is None or fg.shape[1:3] == tuple(size):
        return fg, alpha
    rgba = fit_frames(np.concatenate([premultiply(fg, alpha), alpha[..., None]], axis=-1), size)
    alpha = np.clip(rgba[..., 3], 0.0, 1.0)
    return unpremultiply(rgba[..., :3], alpha), alpha


def repeat_frame(image: np.ndarray, num_frames: int) -> np.ndarray:
    """One image (H, W[, C]) -> a static clip (T, H, W[, C]) of ``num_frames`` copies."""
    return np.repeat(image[None], num_frames, axis=0)
