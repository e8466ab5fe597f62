"""Recipe ``coarse-video``: ordinary videos -> coarse layered clips (the paper's stage-1 data).

Per frame, rembg mattes the salient object; the matte is binarised (hard, SAM-style
alpha, as the paper's stage-1 data). The background behind it is filled from frames
where the pixel is visible, then inpainted with OpenCV. The blend is the original
video; the foreground is the video's colour where alpha is 1, 0 elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from layerflow_model.clip import LayeredClip, LayerPrompts

from .captions import find_captions
from .framing import fit_frames
from .inpainting import inpaint_background
from .inputs import find_inputs, read_clip
from .matting import DEFAULT_MODEL, Matter, binarise
from .recipe import FolderSourceConfig, short_hash
from .sample import LayeredSample, sanitize_key


class CoarseVideoConfig(FolderSourceConfig):
    """Videos or frame folders directly under ``src``; one clip of ``frames`` frames each."""

    recipe: Literal["coarse-video"] = "coarse-video"
    frame_step: int = Field(default=1, gt=0, description="take every n-th source frame")
    matting_model: str = Field(default=DEFAULT_MODEL, description="rembg model name (its file must be local)")
    threshold: float = Field(default=0.5, gt=0, lt=1, description="soft matte -> binary alpha threshold")
    dilate: float = Field(default=0.004, ge=0, description="hole dilation, fraction of max(H, W)")
    temporal_fill: bool = Field(default=True, description="fill holes from other frames before inpainting")


def coarse_clip(frames: np.ndarray, matter: Matter, size: tuple[int, int] | None = None, threshold: float = 0.5,
                dilate: float = 0.004, temporal_fill: bool = True) -> LayeredClip:
    """Source frames (T, H, W, 3) in [0, 1] -> coarse LayeredClip at ``size`` (None: source size).

    Mattes at the source size, then resizes; alpha is binary {0, 1}; bg is inpainted
    behind the matte dilated by ``dilate * max(H, W)`` pixels; blend is the frames.
    """
    soft = matter.matte_frames(frames)  # (T, H, W), [0, 1]
    frames, soft = fit_frames(frames, size), fit_frames(soft, size)
    alpha = binarise(soft, threshold)  # (T, H', W'), {0, 1}
    dilate_px = round(dilate * max(frames.shape[1:3]))
    bg = inpaint_background(frames, alpha > 0, dilate_px=dilate_px, temporal=temporal_fill)
    return LayeredClip(fg=frames * alpha[..., None], alpha=alpha, bg=bg, blend=frames)


class CoarseVideoRecipe:
    """One item per video file or frame folder of ``config.src``."""

    name: ClassVar[str] = "coarse-video"

    def __init__(self, config: CoarseVideoConfig) -> None:
        self.config = config

    @cached_property
    def matter(self) -> Matter:
        return Matter(self.config.matting_model)

    def plan(self) -> list[str]:
        return [p.name for p in find_inputs(self.config.src, images=False, videos=True)]

    def make(self, item: str) -> Iterator[LayeredSample]:
        config, path = self.config, Path(self.config.src) / item
        needed = (config.frames - 1) * config.frame_step + 1
        video = read_clip(path, min_frames=needed, max_pixels=config.max_pixels)
        frames = video.rgb[:needed:config.frame_step]  # (T, H, W, 3)
        captions = find_captions(path)
        yield LayeredSample(
            key=f"coarse-video-{sanitize_key(path.stem)[:48]}-{short_hash(item)}",
            clip=coarse_clip(frames, self.matter, config.size, config.threshold, config.dilate, config.temporal_fill),
            prompts=LayerPrompts(fg=captions.fg or "", bg=captions.bg or "", blend=captions.describing("blend") or ""),
            recipe=self.name,
            source=item,
            fps=video.fps / config.frame_step,
            static=False,
            licence=config.licence,
            extra={"matting_model": config.matting_model},
        )
