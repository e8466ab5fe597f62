"""Clean backgrounds behind a foreground: temporal fill, then OpenCV inpainting.

A hole pixel first takes its colour from the nearest frame (in time) where the same
pixel is visible; pixels never visible are inpainted per frame with OpenCV (Telea).
Temporal fill assumes a mostly still camera; turn it off for strongly moving ones.
"""

from __future__ import annotations

import cv2
import numpy as np

from layerflow_model.clip import to_uint8


def dilate_holes(holes: np.ndarray, pixels: int) -> np.ndarray:
    """Grow boolean holes (T, H, W) by ``pixels`` (a disc), to cover matte edge halos."""
    if pixels <= 0:
        return holes
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return np.stack([cv2.dilate(h.astype(np.uint8), kernel) > 0 for h in holes])


def temporal_fill(frames: np.ndarray, holes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill each hole pixel from the nearest frame where that pixel is visible.

    frames: (T, H, W, 3) in [0, 1]; holes: (T, H, W) bool. Returns the filled frames
    (T, H, W, 3) and the holes that no frame could fill (T, H, W) bool. At equal
    distance the earlier frame wins.
    """
    filled, remaining = frames.copy(), holes.copy()
    num_frames = len(frames)
    for distance in range(1, num_frames):
        if not remaining.any():
            break
        for offset in (-distance, distance):
            lo, hi = max(0, -offset), min(num_frames, num_frames - offset)
            if lo >= hi:
                continue
            take = remaining[lo:hi] & ~holes[lo + offset:hi + offset]  # (T', H, W)
            filled[lo:hi][take] = frames[lo + offset:hi + offset][take]
            remaining[lo:hi] &= ~take
    return filled, remaining


def inpaint_frames(frames: np.ndarray, holes: np.ndarray, radius: int = 3) -> np.ndarray:
    """OpenCV Telea inpainting per frame. frames (T, H, W, 3) in [0, 1], holes (T, H, W) bool."""
    out = frames.copy()
    for index, (frame, hole) in enumerate(zip(frames, holes)):
        if hole.any():
            painted = cv2.inpaint(to_uint8(frame), hole.astype(np.uint8), radius, cv2.INPAINT_TELEA)
            out[index][hole] = painted[hole].astype(np.float32) / 255.0
    return out


def inpaint_background(frames: np.ndarray, holes: np.ndarray, dilate_px: int = 2, temporal: bool = True,
                       radius: int = 3) -> np.ndarray:
    """The background behind ``holes``: frames (T, H, W, 3) in [0, 1], holes (T, H, W) bool.

    Holes are dilated by ``dilate_px``, filled from other frames (``temporal``), and
    what is left is inpainted with OpenCV. Returns (T, H, W, 3) float32 in [0, 1];
    pixels outside the dilated holes are the input's.
    """
    holes = dilate_holes(holes, dilate_px)
    filled, remaining = temporal_fill(frames, holes) if temporal else (frames.copy(), holes)
    return inpaint_frames(filled, remaining, radius).astype(np.float32)
