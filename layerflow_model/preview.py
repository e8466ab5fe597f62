"""Checkerboard previews of a layered clip: a PNG grid of frames and an animated GIF.

Panels, in this order, for whichever layers the clip has: the foreground over a
grey checkerboard (so transparency shows), alpha as grey, the background, the
blend. The PNG grid has one row per panel and one column per sampled frame; the
GIF shows the panels side by side, one GIF frame per clip frame.
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


def write_preview_grid(path: PathLike, clip: LayeredClip, num_frames: int = 4) -> Path:
    """Write a PNG: one row per panel (fg over checkerboard, alpha, bg, blend), labelled on the left.

    Columns are ``num_frames`` evenly spaced frames (all of them if the clip is
    shorter). The image is (rows * (H + 2) - 2) x (48 + cols * (W + 2) - 2) pixels.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    height, width = clip.size
    frames = np.unique(np.linspace(0, clip.num_frames - 1, min(num_frames, clip.num_frames)).round().astype(int))
    panels = layer_panels(clip)
    grid = Image.new("RGB", (LABEL_WIDTH + len(frames) * (width + GAP) - GAP, len(panels) * (height + GAP) - GAP))
    draw = ImageDraw.Draw(grid)
    for row, (label, video) in enumerate(panels):
        top = row * (height + GAP)
        draw.text((4, top + height // 2), label, fill=(255, 255, 255), anchor="lm")
        for col, index in enumerate(frames):
            grid.paste(Image.fromarray(to_uint8(video[index])), (LABEL_WIDTH + col * (width + GAP), top))
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
