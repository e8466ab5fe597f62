"""Checkerboard previews of a layered clip: a PNG grid of frames and an animated GIF.

Panels, in this order, for whichever layers the clip has: the foreground over a
grey checkerboard (so transparency shows), alpha as grey, the background, the
blend. The PNG grid has one row per panel and one column per sampled frame; the
GIF shows the panels side by side, one GIF frame per clip frame. The comparison grid puts a
prediction beside its ground truth.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from layerflow_model.clip import LayeredClip, to_uint8
from layerflow_model.video_io import PathLike, atomic_output

CHECKER_LIGHT, CHECKER_DARK = 0.8, 0.6  # grey levels in [0, 1], as image editors draw transparency
GAP = 2  # pixels between panels
LABEL_WIDTH = 48  # pixels of the grid's left margin holding row names
HEADER_HEIGHT = 14  # pixels of the comparison grid's top row naming its halves


def checkerboard(height: int, width: int, cell: int = 8) -> np.ndarray:
    """A grey checkerboard (height, width, 3), float32 in [0, 1], squares of ``cell`` pixels."""
    if height < 1 or width < 1 or cell < 1:
        raise ValueError(f"checkerboard needs height, width, cell >= 1, got {height}, {width}, {cell}")
    rows = (np.arange(height) // cell)[:, None]
    cols = (np.arange(width) // cell)[None, :]
    board = np.where((rows + cols) % 2 == 0, CHECKER_LIGHT, CHECKER_DARK).astype(np.float32)  # (H, W)
    return np.repeat(board[..., None], 3, axis=-1)


def over_checkerboard(fg: np.ndarray, alpha: np.ndarray, cell: int = 8) -> np.ndarray:
    """Composite a straight foreground over a checkerboard.

    fg: (..., H, W, 3), alpha: (..., H, W), both in [0, 1] (e.g. (T, H, W, 3) and
    (T, H, W)). Returns (..., H, W, 3) float32 in [0, 1].
    """
    if fg.shape[-1] != 3 or fg.shape[:-1] != alpha.shape:
        raise ValueError(f"fg must be (..., H, W, 3) and alpha (..., H, W); got {fg.shape} and {alpha.shape}")
    board = checkerboard(*alpha.shape[-2:], cell=cell)  # (H, W, 3)
    a = alpha[..., None]
    return (a * fg + (1.0 - a) * board).astype(np.float32)


def layer_panels(clip: LayeredClip) -> list[tuple[str, np.ndarray]]:
    """``(label, frames)`` per panel the clip can show; frames (T, H, W, 3) float32 in [0, 1]."""
    panels = []
    if clip.fg is not None:
        fg = over_checkerboard(clip.fg, clip.alpha) if clip.alpha is not None else clip.fg
        panels.append(("fg", fg))
    if clip.alpha is not None:
        panels.append(("alpha", np.repeat(clip.alpha[..., None], 3, axis=-1)))
    if clip.bg is not None:
        panels.append(("bg", clip.bg))
    if clip.blend is not None:
        panels.append(("blend", clip.blend))
    return panels


def _sampled_frames(clip: LayeredClip, num_frames: int) -> np.ndarray:
    """Indices of ``num_frames`` evenly spaced frames of ``clip`` (all of them if it is shorter)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return np.unique(np.linspace(0, clip.num_frames - 1, min(num_frames, clip.num_frames)).round().astype(int))


def _paste_frames(grid: Image.Image, video: np.ndarray, frames: np.ndarray, left: int, top: int, scale: int) -> None:
    """Paste ``video[frames]`` ((T, H, W, 3) in [0, 1]) side by side at (left, top), each scaled ``scale`` times."""
    height, width = video.shape[1] * scale, video.shape[2] * scale
    for col, index in enumerate(frames):
        image = Image.fromarray(to_uint8(video[index])).resize((width, height), Image.NEAREST)
        grid.paste(image, (left + col * (width + GAP), top))


def write_preview_grid(path: PathLike, clip: LayeredClip, num_frames: int = 4) -> Path:
    """Write a PNG: one row per panel (fg over checkerboard, alpha, bg, blend), labelled on the left.

    Columns are ``num_frames`` evenly spaced frames (all of them if the clip is
    shorter). The image is (rows * (H + 2) - 2) x (48 + cols * (W + 2) - 2) pixels.
    """
    height, width = clip.size
    frames = _sampled_frames(clip, num_frames)
    panels = layer_panels(clip)
    grid = Image.new("RGB", (LABEL_WIDTH + len(frames) * (width + GAP) - GAP, len(panels) * (height + GAP) - GAP))
    draw = ImageDraw.Draw(grid)
    for row, (label, video) in enumerate(panels):
        top = row * (height + GAP)
        draw.text((4, top + height // 2), label, fill=(255, 255, 255), anchor="lm")
        _paste_frames(grid, video, frames, LABEL_WIDTH, top, 1)
    with atomic_output(path) as tmp:
        grid.save(tmp, format="PNG")
    return Path(path)


def write_comparison_grid(path: PathLike, truth: LayeredClip, prediction: LayeredClip, num_frames: int = 4,
                          scale: int = 1) -> Path:
    """Write a PNG: the ground truth's frames on the left, the prediction's on the right, one row per panel.

    Rows are the panels both clips have (fg over checkerboard, alpha, bg, blend), under a header
    row naming the two halves; each frame is scaled ``scale`` times (nearest neighbour). Both
    clips must have the same frame count and size.
    """
    if (truth.num_frames, truth.size) != (prediction.num_frames, prediction.size):
        raise ValueError(f"truth and prediction differ in shape: {truth.num_frames} frames of {truth.size} "
                         f"against {prediction.num_frames} of {prediction.size}")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    height, width = truth.size[0] * scale, truth.size[1] * scale
    frames = _sampled_frames(truth, num_frames)
    true_panels, pred_panels = dict(layer_panels(truth)), dict(layer_panels(prediction))
    labels = [label for label in true_panels if label in pred_panels]
    half = len(frames) * (width + GAP) - GAP
    grid = Image.new("RGB", (LABEL_WIDTH + 2 * half + 4 * GAP, HEADER_HEIGHT + len(labels) * (height + GAP) - GAP))
    draw = ImageDraw.Draw(grid)
    draw.text((LABEL_WIDTH, HEADER_HEIGHT // 2), "ground truth", fill=(255, 255, 255), anchor="lm")
    draw.text((LABEL_WIDTH + half + 4 * GAP, HEADER_HEIGHT // 2), "prediction", fill=(255, 255, 255), anchor="lm")
    for row, label in enumerate(labels):
        top = HEADER_HEIGHT + row * (height + GAP)
        draw.text((4, top + height // 2), label, fill=(255, 255, 255), anchor="lm")
        _paste_frames(grid, true_panels[label], frames, LABEL_WIDTH, top, scale)
        _paste_frames(grid, pred_panels[label], frames, LABEL_WIDTH + half + 4 * GAP, top, scale)
    with atomic_output(path) as tmp:
        grid.save(tmp, format="PNG")
    return Path(path)


def write_preview_gif(path: PathLike, clip: LayeredClip, fps: float) -> Path:
    """Write an animated, looping GIF of the panels side by side (fg over checkerboard, alpha, bg, blend).

    Each GIF frame is H x (panels * (W + 2) - 2) pixels, shown 1/fps seconds
    (GIF stores centiseconds, so the rate is rounded).
    """
    if not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    panels = [video for _, video in layer_panels(clip)]
    height, width = clip.size
    strip = np.zeros((clip.num_frames, height, len(panels) * (width + GAP) - GAP, 3), dtype=np.uint8)
    for i, video in enumerate(panels):
        strip[:, :, i * (width + GAP) : i * (width + GAP) + width] = to_uint8(video)
    images = [Image.fromarray(frame) for frame in strip]
    with atomic_output(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return Path(path)
