"""Recipe ``layered-images``: static layered images -> static clips (the frame repeated).

Two kinds of input directly under ``src``:

- a layered image folder ``NAME/`` holding ``fg.png`` (RGBA, straight colour) and
  ``bg.png``/``bg.jpg`` of the same size, captions in ``NAME/prompts.json`` (or
  any source of :mod:`data_recipes.captions`);
- a plain composite image ``NAME.jpg``/``.png``: matted with rembg (soft alpha), its
  background inpainted with OpenCV behind the matte; captions from sidecars.

Samples are flagged ``static``; the blend of a composite is the image itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from layerflow_model.clip import LayeredClip, LayerPrompts, composite

from .captions import find_captions, join_captions
from .framing import fit_foreground, fit_frames, repeat_frame
from .inpainting import inpaint_background
from .inputs import IMAGE_SUFFIXES, SkipInput, is_image, read_image
from .matting import DEFAULT_MODEL, Matter
from .recipe import FolderSourceConfig, short_hash
from .sample import LayeredSample, sanitize_key


class LayeredImagesConfig(FolderSourceConfig):
    """Layered image folders and/or plain composites directly under ``src``."""

    recipe: Literal["layered-images"] = "layered-images"
    matte_composites: bool = Field(default=True, description="also turn plain images into layers with rembg")
    matting_model: str = Field(default=DEFAULT_MODEL, description="rembg model name (its file must be local)")
    hole_threshold: float = Field(default=0.1, gt=0, lt=1, description="matte level inpainted behind")
    dilate: float = Field(default=0.01, ge=0, description="hole dilation, fraction of max(H, W)")
    fps: float = Field(default=8.0, gt=0)


def _layer_file(folder: Path, stem: str) -> Path | None:
    found = sorted(p for p in folder.iterdir() if p.stem == stem and p.suffix.lower() in IMAGE_SUFFIXES)
    return found[0] if found else None


def is_layered_folder(path: Path) -> bool:
    """A folder with an ``fg`` image in it."""
    return path.is_dir() and _layer_file(path, "fg") is not None


def read_layered_folder(folder: Path, max_pixels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``folder/fg.*`` (RGBA) and ``folder/bg.*`` -> fg (H, W, 3), alpha (H, W), bg (H, W, 3) in [0, 1].

    Raises :class:`SkipInput` when bg is missing, fg lacks alpha, or the sizes differ.
    """
    fg_path, bg_path = _layer_file(folder, "fg"), _layer_file(folder, "bg")
    if bg_path is None:
        raise SkipInput(folder, "layered image folder has fg but no bg image")
    fg, alpha = read_image(fg_path, max_pixels, require_alpha=True)
    bg, _ = read_image(bg_path, max_pixels)
    if fg.shape != bg.shape:
        raise SkipInput(folder, f"fg is {fg.shape[1]}x{fg.shape[0]} but bg is {bg.shape[1]}x{bg.shape[0]} (WxH)")
    return fg, alpha, bg


def layers_from_composite(image: np.ndarray, matter: Matter, hole_threshold: float = 0.1, dilate: float = 0.01
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plain image (H, W, 3) in [0, 1] -> fg (H, W, 3) straight, soft alpha (H, W), inpainted bg (H, W, 3).

    The background is inpainted where the matte exceeds ``hole_threshold``, dilated
    by ``dilate * max(H, W)`` pixels. fg is the image's colour where alpha > 0.
    """
    alpha = matter.matte(image)
    holes = (alpha > hole_threshold)[None]  # (1, H, W)
    bg = inpaint_background(image[None], holes, dilate_px=round(dilate * max(image.shape[:2])), temporal=False)[0]
    fg = np.where(alpha[..., None] > 0, image, 0.0)
    return fg.astype(np.float32), alpha, bg


class LayeredImagesRecipe:
    """One item per layered image folder or plain image of ``config.src``."""

    name: ClassVar[str] = "layered-images"

    def __init__(self, config: LayeredImagesConfig) -> None:
        self.config = config

    @cached_property
    def matter(self) -> Matter:
        return Matter(self.config.matting_model)

    def plan(self) -> list[str]:
        src = Path(self.config.src)
        if not src.is_dir():
            raise ValueError(f"src {src} does not exist or is not a directory")
        return [p.name for p in sorted(src.iterdir()) if not p.name.startswith(".")
                and (is_layered_folder(p) or (self.config.matte_composites and is_image(p)))]

    def make(self, item: str) -> Iterator[LayeredSample]:
        config, path = self.config, Path(self.config.src) / item
        captions = find_captions(path)
        if path.is_dir():
            fg, alpha, bg = read_layered_folder(path, config.max_pixels)
            blend = composite(fg[None], alpha[None], bg[None])[0]
            origin = "layered"
        else:
            blend, _ = read_image(path, config.max_pixels)
            fg, alpha, bg = layers_from_composite(blend, self.matter, config.hole_threshold, config.dilate)
            origin = "matted composite"
        fg_text, bg_text = captions.fg or "", captions.bg or ""
        blend_text = captions.describing("blend") or join_captions(fg_text, bg_text)

        fg, alpha = fit_foreground(fg[None], alpha[None], config.size)  # (1, H', W', 3), (1, H', W')
        bg, blend = fit_frames(bg[None], config.size), fit_frames(blend[None], config.size)
        yield LayeredSample(
            key=f"layered-images-{sanitize_key(path.stem)[:48]}-{short_hash(item)}",
            clip=LayeredClip(**{name: repeat_frame(layer[0], config.frames)
                                for name, layer in (("fg", fg), ("alpha", alpha), ("bg", bg), ("blend", blend))}),
            prompts=LayerPrompts(fg=fg_text, bg=bg_text, blend=blend_text),
            recipe=self.name,
            source=item,
            fps=config.fps,
            static=True,
            licence=config.licence,
            extra={"origin": origin},
        )
