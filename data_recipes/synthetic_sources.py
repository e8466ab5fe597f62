"""Source files for the file-based recipes, made from the synthetic world.

The embedded default has no videos or images of its own, so the copy-paste, layered-image
and coarse-video recipes get their inputs here: RGBA foreground PNGs, background frame
folders, layered-image folders and blended videos as frame folders, each with its caption,
from synthetic seeds reserved for sources (below the training/evaluation split's limit and
apart from the seeds the synthetic shards use). Each source folder is written under a
temporary name and renamed into place, replacing an earlier one whole, so a rerun with
fewer sources leaves none of the earlier run's behind for a recipe to pick up.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from layerflow_model.clip import to_uint8
from layerflow_model.video_io import atomic_output, write_png_sequence

from .synthetic import SyntheticConfig, synthetic_sample

SOURCE_SEEDS = {"fg": 100_000, "bg": 200_000, "image": 300_000, "video": 400_000}  # synthetic seeds of the sources


def write_copy_paste_sources(folder: Path, count: int, shape: SyntheticConfig) -> tuple[Path, Path]:
    """RGBA foreground PNGs and background frame folders (with caption sidecars) from the synthetic world."""
    fg_dir, bg_dir = folder / "foregrounds", folder / "backgrounds"
    with atomic_output(fg_dir) as fg_tmp, atomic_output(bg_dir) as bg_tmp:
        fg_tmp.mkdir()
        bg_tmp.mkdir()
        for i in range(count):
            fg = synthetic_sample(SOURCE_SEEDS["fg"] + i, shape)
            rgba = np.concatenate([fg.clip.fg[0], fg.clip.alpha[0][..., None]], axis=-1)  # (H, W, 4) straight
            Image.fromarray(to_uint8(rgba), "RGBA").save(fg_tmp / f"fg-{i:05d}.png")
            (fg_tmp / f"fg-{i:05d}.txt").write_text(fg.prompts.fg)
            bg = synthetic_sample(SOURCE_SEEDS["bg"] + i, shape)
            write_png_sequence(bg_tmp / f"bg-{i:05d}", bg.clip.bg)
            (bg_tmp / f"bg-{i:05d}.txt").write_text(bg.prompts.bg)
    return fg_dir, bg_dir


def write_layered_image_sources(folder: Path, count: int, shape: SyntheticConfig) -> Path:
    """Layered image folders (``fg.png`` RGBA, ``bg.png``, ``prompts.json``) from first frames of synthetic clips."""
    with atomic_output(folder) as tmp:
        tmp.mkdir()
        for i in range(count):
            sample = synthetic_sample(SOURCE_SEEDS["image"] + i, shape)
            item = tmp / f"image-{i:05d}"
            item.mkdir()
            rgba = np.concatenate([sample.clip.fg[0], sample.clip.alpha[0][..., None]], axis=-1)
            Image.fromarray(to_uint8(rgba), "RGBA").save(item / "fg.png")
            Image.fromarray(to_uint8(sample.clip.bg[0])).save(item / "bg.png")
            prompts = sample.prompts
            (item / "prompts.json").write_text(json.dumps({"fg": prompts.fg, "bg": prompts.bg, "blend": prompts.blend}))
    return folder


def write_video_sources(folder: Path, count: int, shape: SyntheticConfig) -> Path:
    """Blended synthetic videos as frame folders (with caption sidecars), for the coarse-video recipe."""
    with atomic_output(folder) as tmp:
        tmp.mkdir()
        for i in range(count):
            sample = synthetic_sample(SOURCE_SEEDS["video"] + i, shape)
            write_png_sequence(tmp / f"video-{i:05d}", sample.clip.blend)
            (tmp / f"video-{i:05d}.txt").write_text(sample.prompts.blend)
    return folder
