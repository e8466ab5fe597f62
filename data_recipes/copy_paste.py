"""Recipe ``copy-paste``: RGBA foregrounds pasted onto background videos along random trajectories.

Foregrounds (directly under ``src``): RGBA images, plain images (matted with rembg
when ``matte_plain_images``), RGBA videos (WebM VP9 alpha, ProRes 4444) or folders
of RGBA PNG frames. Backgrounds (directly under ``backgrounds``): videos or frame
folders. Each foreground is pasted ``per_foreground`` times, each time on a
background and along a trajectory drawn from (seed, item): linear translation,
scale and rotation, and optionally a fade in or out. The layers are exact: the
blend is the composite of the pasted foreground over the background.
Captions: the foreground's (``fg``) and the background's (``bg``) sidecars or
metadata (:mod:`data_recipes.captions`); the blend joins the two.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field, model_validator

from layerflow_model.clip import LayeredClip, LayerPrompts, composite, premultiply, unpremultiply

from .captions import find_captions, join_captions
from .framing import fit_frames
from .inputs import SkipInput, find_inputs, is_image, read_clip, read_image
from .matting import DEFAULT_MODEL, Matter
from .recipe import FolderSourceConfig, item_rng, short_hash
from .sample import LayeredSample, sanitize_key

class CopyPasteConfig(FolderSourceConfig):
    """Foregrounds under ``src``, backgrounds under ``backgrounds``; see the module docstring."""

    recipe: Literal["copy-paste"] = "copy-paste"
    backgrounds: Path = Field(description="folder of background videos or frame folders")
    per_foreground: int = Field(default=1, gt=0, description="samples made from each foreground")
    seed: int = Field(default=0, ge=0, description="seeds background choice and trajectories")
    scale: tuple[float, float] = Field(default=(0.3, 0.7), description="fg longest side, fraction of min(H, W)")
    max_rotation: float = Field(default=30.0, ge=0, le=180, description="largest rotation over a clip, degrees")
    fade_probability: float = Field(default=0.2, ge=0, le=1, description="chance of a fade in or out")
    matte_plain_images: bool = Field(default=True, description="matte foreground images without alpha with rembg")
    matting_model: str = Field(default=DEFAULT_MODEL, description="rembg model name (its file must be local)")
    fps: float | None = Field(default=None, gt=0, description="None: the background's rate")

    @model_validator(mode="after")
    def _scale_range(self) -> "CopyPasteConfig":
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {self.scale}")
        return self


@dataclass(frozen=True)
class Trajectory:
    """Foreground motion over a clip, interpolated linearly from the first to the last frame.

    Positions are the fg centre as fractions of (W, H); scale is the fg's longest
    side as a fraction of min(H, W); angles in degrees, counter-clockwise.
    """

    start: tuple[float, float]
    end: tuple[float, float]
    scale: tuple[float, float]
    angle: tuple[float, float]
    fade: str

    def at(self, u: float) -> tuple[tuple[float, float], float, float, float]:
        """(centre, scale, angle, opacity) at clip position ``u`` in [0, 1]."""
        def lerp(first: float, last: float) -> float:
            return first + (last - first) * u

        centre = (lerp(self.start[0], self.end[0]), lerp(self.start[1], self.end[1]))
        ramp = float(np.clip(0.15 + 1.7 * u, 0.0, 1.0))
        opacity = {"none": 1.0, "in": ramp, "out": float(np.clip(1.85 - 1.7 * u, 0.0, 1.0))}[self.fade]
        return centre, lerp(*self.scale), lerp(*self.angle), opacity


def random_trajectory(rng: np.random.Generator, scale: tuple[float, float] = (0.3, 0.7),
                      max_rotation: float = 30.0, fade_probability: float = 0.2) -> Trajectory:
    """A trajectory whose centre stays in the middle 70% of the frame."""
    start, end = rng.uniform(0.15, 0.85, size=2), rng.uniform(0.15, 0.85, size=2)
    scales = rng.uniform(*scale, size=2)
    angle0 = float(rng.uniform(-max_rotation / 2, max_rotation / 2))
    fade = str(rng.choice(["in", "out"])) if rng.random() < fade_probability else "none"
    return Trajectory(
        start=(float(start[0]), float(start[1])),
        end=(float(end[0]), float(end[1])),
        scale=(float(scales[0]), float(scales[1])),
        angle=(angle0, angle0 + float(rng.uniform(-max_rotation / 2, max_rotation / 2))),
        fade=fade,
    )


def crop_to_alpha(rgb: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop rgb (T, H, W, 3) and alpha (T, H, W) to the box where any frame is visible (1 px margin)."""
    rows, cols = np.nonzero((alpha > 1 / 255).any(axis=0))
    if rows.size == 0:
        raise ValueError("foreground alpha is empty (fully transparent)")
    top, bottom = max(rows.min() - 1, 0), rows.max() + 2
    left, right = max(cols.min() - 1, 0), cols.max() + 2
    return rgb[:, top:bottom, left:right], alpha[:, top:bottom, left:right]


def paste(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, trajectory: Trajectory) -> LayeredClip:
    """Paste a foreground onto a background clip along a trajectory.

    fg (F, h, w, 3) straight colour and alpha (F, h, w), cropped to the object, with
    F = T frames, or F = 1 for a still; bg (T, H, W, 3); all in [0, 1]. Returns the
    LayeredClip at (H, W) with an exact blend.
    """
    num_frames, (height, width) = len(bg), bg.shape[1:3]
    rgba = np.concatenate([premultiply(fg, alpha), alpha[..., None]], axis=-1)  # (F, h, w, 4), premultiplied
    shrink = max(trajectory.scale) * min(height, width) / max(fg.shape[1:3])
    if shrink < 1:  # downscale once with area averaging: no aliasing, and less to warp
        size = (max(1, round(fg.shape[2] * shrink)), max(1, round(fg.shape[1] * shrink)))
        rgba = np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in rgba])
    fg_h, fg_w = rgba.shape[1:3]
    fg_centre = ((fg_w - 1) / 2, (fg_h - 1) / 2)
    warped = np.empty((num_frames, height, width, 4), dtype=np.float32)
    for t in range(num_frames):
        (cx, cy), scale, angle, opacity = trajectory.at(t / max(num_frames - 1, 1))
        zoom = scale * min(height, width) / max(fg_h, fg_w)
        matrix = cv2.getRotationMatrix2D(fg_centre, angle, zoom)  # about the fg centre
        matrix[:, 2] += (cx * width - fg_centre[0], cy * height - fg_centre[1])  # then move it into place
        warped[t] = cv2.warpAffine(rgba[min(t, len(rgba) - 1)], matrix, (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0) * opacity
    out_alpha = np.clip(warped[..., 3], 0.0, 1.0)  # (T, H, W)
    out_fg, blend = np.zeros_like(bg), bg.copy()
    rows, cols = np.nonzero(out_alpha.any(axis=0))
    if rows.size:  # colour and composite only where the foreground ever is: the rest is 0 and bg
        box = np.s_[:, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        out_fg[box] = unpremultiply(warped[..., :3][box], out_alpha[box])
        blend[box] = composite(out_fg[box], out_alpha[box], bg[box])
    return LayeredClip(fg=out_fg, alpha=out_alpha, bg=bg, blend=blend)


class CopyPasteRecipe:
    """Items are JSON ``{"fg": name, "bg": name, "n": k}`` (names under ``src`` and ``backgrounds``),
    ``per_foreground`` per foreground."""

    name: ClassVar[str] = "copy-paste"

    def __init__(self, config: CopyPasteConfig) -> None:
        self.config = config

    @cached_property
    def matter(self) -> Matter:
        return Matter(self.config.matting_model)

    def plan(self) -> list[str]:
        config = self.config
        backgrounds = [p.name for p in find_inputs(config.backgrounds, images=False, videos=True)]
        if not backgrounds:
            raise ValueError(f"backgrounds folder {config.backgrounds} holds no videos or frame folders")
        items = []
        for fg in (p.name for p in find_inputs(config.src, images=True, videos=True)):
            for n in range(config.per_foreground):
                bg = backgrounds[item_rng(config.seed, f"{fg}|{n}").integers(len(backgrounds))]
                items.append(json.dumps({"fg": fg, "bg": bg, "n": n}, sort_keys=True))
        return items

    def read_foreground(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """A foreground -> rgb (F, h, w, 3) and alpha (F, h, w), cropped to the object; F = 1 for images."""
        config = self.config
        if is_image(path):
            rgb, alpha = read_image(path, config.max_pixels, require_alpha=not config.matte_plain_images)
            rgb, alpha = rgb[None], (self.matter.matte(rgb) if alpha is None else alpha)[None]
        else:
            video = read_clip(path, min_frames=config.frames, max_pixels=config.max_pixels, require_alpha=True)
            rgb, alpha = video.rgb[:config.frames], video.alpha[:config.frames]
        try:
            return crop_to_alpha(rgb, alpha)
        except ValueError as error:
            raise SkipInput(path, str(error)) from error

    def make(self, item: str) -> Iterator[LayeredSample]:
        config, spec = self.config, json.loads(item)
        fg_path, bg_path = Path(config.src) / spec["fg"], Path(config.backgrounds) / spec["bg"]
        background = read_clip(bg_path, min_frames=config.frames, max_pixels=config.max_pixels)
        bg = fit_frames(background.rgb[:config.frames], config.size)  # (T, H, W, 3)
        fg, alpha = self.read_foreground(fg_path)  # (F, h, w, 3), (F, h, w); F = 1 for a still
        rng = item_rng(config.seed, item)
        trajectory = random_trajectory(rng, config.scale, config.max_rotation, config.fade_probability)
        fg_text = find_captions(fg_path).describing("fg") or ""
        bg_text = find_captions(bg_path).describing("bg") or ""
        yield LayeredSample(
            key=f"copy-paste-{sanitize_key(fg_path.stem)[:32]}-{spec['n']}-{short_hash(item)}",
            clip=paste(fg, alpha, bg, trajectory),
            prompts=LayerPrompts(fg=fg_text, bg=bg_text, blend=join_captions(fg_text, bg_text)),
            recipe=self.name,
            source=f"fg={spec['fg']}; bg={spec['bg']}",
            fps=config.fps or background.fps,
            static=False,
            licence=config.licence,
            extra={"trajectory": asdict(trajectory)},
        )
