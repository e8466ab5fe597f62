"""A video longer than the model's clip, processed in overlapping windows of the clip's length.

The model sees T frames at a time. :func:`window_starts` lays windows of T frames over a
longer video (each next window starts ``T - overlap`` frames later, the last one ends on the
last frame); :func:`sample_in_windows` runs the pipeline on each window with the same noise
and :func:`stitch_windows` joins the results, cross-fading the frames two windows share with
weights that fall linearly towards each window's ends. The foreground is cross-faded
premultiplied, so its colour stays where its opacity is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .clip import LayeredClip, LayerPrompts, average_clips
from .conditioning import given_layers_for, with_given_layers


def window_starts(num_frames: int, window: int, overlap: int) -> list[int]:
    """First frame of each window of ``window`` frames covering ``num_frames`` frames.

    Windows step by ``window - overlap``; the last starts at ``num_frames - window``, so it may
    share more than ``overlap`` frames with the one before. Raises ``ValueError`` when the video
    is shorter than a window or ``overlap`` is not in [0, window - 1].
    """
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be between 0 and {window - 1} frames (the window is {window}), got {overlap}")
    if num_frames < window:
        raise ValueError(f"{num_frames} frames is shorter than one window of {window}")
    last = num_frames - window
    starts = list(range(0, last, window - overlap))
    return starts + [last]


def crossfade_weights(window: int, overlap: int) -> np.ndarray:
    """(window,) weights in (0, 1]: 1 in the middle, a linear ramp over ``overlap`` frames at each end."""
    position = np.arange(window, dtype=np.float32)
    ramp = np.minimum(position + 1, window - position) / (overlap + 1)
    return np.minimum(ramp, 1.0).astype(np.float32)


def split_windows(clip: LayeredClip, starts: Sequence[int], window: int) -> list[LayeredClip]:
    """The clip's frames ``[s, s + window)`` for each start ``s``, every present layer."""
    return [LayeredClip(**{name: getattr(clip, name)[s:s + window] for name in clip.present_layers()})
            for s in starts]


def stitch_windows(windows: Sequence[LayeredClip], starts: Sequence[int], overlap: int) -> LayeredClip:
    """Join windows of equal length into one clip of ``starts[-1] + window`` frames.

    Frames covered by several windows are their :func:`crossfade_weights`-weighted mean
    (:func:`~.clip.average_clips`: ``fg`` premultiplied by ``alpha``). Every window must hold
    the same layers.
    """
    return average_clips(windows, starts, crossfade_weights(windows[0].num_frames, overlap))


@dataclass(frozen=True)
class WindowedResult:
    """A stitched clip, the first frame of each window, and the sampling settings the pipeline used."""

    clip: LayeredClip
    starts: list[int]
    num_inference_steps: int
    guidance_scale: float
    flip_average: bool
    refine_alpha: bool


def sample_in_windows(
    pipe,
    prompts: LayerPrompts,
    given: LayeredClip,
    task: str,
    overlap: int,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    seed: int = 0,
    flip_average: bool | None = None,
    refine_alpha: bool | None = None,
) -> WindowedResult:
    """Run ``pipe`` on every window of ``given`` (T' >= the model's T frames) and stitch the results.

    Each window starts from the same noise (a generator seeded with ``seed``), so the windows
    differ only by what they are given; ``flip_average`` and ``refine_alpha`` as in the pipeline
    (None: the model's default for the task). The stitched clip has T' frames and the given layers
    exactly as passed in. One progress bar counts windows (the pipeline's own is silenced
    while they run).
    """
    window = pipe.config.num_frames
    starts = window_starts(given.num_frames, window, overlap)
    bar_config = dict(getattr(pipe, "_progress_bar_config", {}))
    pipe.set_progress_bar_config(disable=True)
    outputs = []
    try:
        for piece in tqdm(split_windows(given, starts, window), desc=f"{task} in windows of {window} frames",
                          unit="window", leave=False):
            result = pipe(prompts, given=piece, task=task, num_inference_steps=num_inference_steps,
                          guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(seed),
                          flip_average=flip_average, refine_alpha=refine_alpha)
            outputs.append(result.clips[0])
    finally:
        pipe.set_progress_bar_config(**bar_config)
    clip = with_given_layers(stitch_windows(outputs, starts, overlap), given, given_layers_for(task, given))
    return WindowedResult(clip, starts, result.num_inference_steps, result.guidance_scale, result.flip_average,
                          result.refine_alpha)
