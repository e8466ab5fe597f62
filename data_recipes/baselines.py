"""Two decomposition baselines without a learned video model: blended frames -> layered clip.

- ``median``: the per-pixel temporal median of the frames is the background; a pixel is
  foreground where its colour is far from that median (max over channels above
  ``threshold``), cleaned by a morphological opening (drops specks) and closing (fills gaps).
  Works for a still camera and an object that moves; fails when the camera moves or the
  object stands still (it becomes background).
- ``classical``: the coarse-video recipe's layers (:func:`data_recipes.coarse_video.coarse_clip`):
  a rembg matte per frame, binarised, and the background behind it filled from other
  frames, then inpainted with OpenCV.

Both return binary alpha, the foreground colour equal to the frame where alpha is 1 (0
elsewhere), and the input frames as the blend.
"""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar, Protocol

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from layerflow_model.clip import LayeredClip

from .coarse_video import coarse_clip
from .matting import DEFAULT_MODEL, Matter


class BaselineConfig(BaseModel):
    """Base of the baselines' configs: immutable, unknown keys rejected, errors name the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Baseline(Protocol):
    """Blended frames (T, H, W, 3) in [0, 1] -> a LayeredClip with all four layers."""

    name: ClassVar[str]

    def decompose(self, frames: np.ndarray) -> LayeredClip: ...


def _radius(fraction: float, height: int, width: int) -> int:
    """A length given as a fraction of min(H, W) -> pixels, at least 1 when the fraction is positive."""
    return max(1, round(fraction * min(height, width))) if fraction > 0 else 0


def _morph(masks: np.ndarray, op: int, radius: int) -> np.ndarray:
    """Opening or closing of uint8 masks (T, H, W) with a disc of ``radius`` pixels (0: unchanged)."""
    if radius == 0:
        return masks
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return np.stack([cv2.morphologyEx(m, op, kernel) for m in masks])


####################################################################################
# Temporal median
####################################################################################


class MedianConfig(BaselineConfig):
    """Settings of the temporal-median baseline; lengths are fractions of min(H, W)."""

    threshold: float = Field(default=0.1, gt=0, lt=1, description="colour distance from the median background "
                             "(max over channels, [0, 1]) above which a pixel is foreground")
    open_radius: float = Field(default=0.005, ge=0, lt=0.5, description="opening disc radius: drops specks")
    close_radius: float = Field(default=0.02, ge=0, lt=0.5, description="closing disc radius: fills gaps")


class MedianBaseline:
    """Temporal-median background and a difference-threshold matte (module docstring)."""

    name: ClassVar[str] = "median"

    def __init__(self, config: MedianConfig = MedianConfig()) -> None:
        self.config = config

    def decompose(self, frames: np.ndarray) -> LayeredClip:
        """frames (T, H, W, 3) in [0, 1] -> LayeredClip: binary alpha, bg the median repeated over T."""
        frames = np.asarray(frames, dtype=np.float32)
        height, width = frames.shape[1:3]
        background = np.median(frames, axis=0)  # (H, W, 3)
        distance = np.abs(frames - background).max(axis=-1)  # (T, H, W), [0, 1]
        masks = (distance > self.config.threshold).astype(np.uint8)  # (T, H, W), {0, 1}
        masks = _morph(masks, cv2.MORPH_OPEN, _radius(self.config.open_radius, height, width))
        masks = _morph(masks, cv2.MORPH_CLOSE, _radius(self.config.close_radius, height, width))
        alpha = masks.astype(np.float32)  # (T, H, W), {0, 1}
        bg = np.broadcast_to(background, frames.shape).copy()  # (T, H, W, 3)
        return LayeredClip(fg=frames * alpha[..., None], alpha=alpha, bg=bg, blend=frames)


####################################################################################
# rembg matte + inpainting
####################################################################################


class ClassicalConfig(BaselineConfig):
    """Settings of the rembg + inpainting baseline (as :class:`data_recipes.coarse_video.CoarseVideoConfig`)."""

    matting_model: str = Field(default=DEFAULT_MODEL, description="rembg model name (its file must be local)")
    threshold: float = Field(default=0.5, gt=0, lt=1, description="soft matte -> binary alpha threshold")
    dilate: float = Field(default=0.004, ge=0, description="hole dilation, fraction of max(H, W)")
    temporal_fill: bool = Field(default=True, description="fill holes from other frames before inpainting")


class ClassicalBaseline:
    """rembg matte per frame, background filled from other frames and inpainted (module docstring).

    The rembg session is created on first use and reused for every clip.
    """

    name: ClassVar[str] = "classical"

    def __init__(self, config: ClassicalConfig = ClassicalConfig()) -> None:
        self.config = config

    @cached_property
    def matter(self) -> Matter:
        return Matter(self.config.matting_model)

    def decompose(self, frames: np.ndarray) -> LayeredClip:
        """frames (T, H, W, 3) in [0, 1] -> LayeredClip at the frames' size (binary alpha)."""
        config = self.config
        return coarse_clip(np.asarray(frames, dtype=np.float32), self.matter, None, config.threshold, config.dilate,
                           config.temporal_fill)


BASELINES: dict[str, tuple[type, type[BaselineConfig]]] = {
    MedianBaseline.name: (MedianBaseline, MedianConfig),
    ClassicalBaseline.name: (ClassicalBaseline, ClassicalConfig),
}


def make_baseline(name: str, **settings) -> Baseline:
    """The baseline ``name`` with its config built from ``settings`` (validated, naming the field).

    Raises ``ValueError`` listing the valid names when ``name`` is unknown.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    baseline_class, config_class = BASELINES[name]
    return baseline_class(config_class(**settings))
