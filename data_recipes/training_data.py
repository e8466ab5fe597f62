"""The shard folders of a training run whose stages list none: every recipe on procedural sources.

:func:`build_training_data` builds synthetic and coarse videos for the base stage, frozen
copy-paste clips for the motion stage, and layered images plus copy-paste videos for the
content stage, all in one ``data`` folder. Shards already complete for the same
plan are kept, so a rerun is cheap.
"""

from __future__ import annotations

from pathlib import Path

from layerflow_model.config import ClipConfig
from layerflow_model.train_config import AutoData

from .build import build
from .coarse_video import CoarseVideoConfig, CoarseVideoRecipe
from .copy_paste import CopyPasteConfig, CopyPasteRecipe
from .frozen import FrozenConfig, FrozenRecipe
from .layered_images import LayeredImagesConfig, LayeredImagesRecipe
from .synthetic import SyntheticConfig, SyntheticRecipe
from .synthetic_sources import write_copy_paste_sources, write_layered_image_sources, write_video_sources


def build_training_data(data: Path, auto: AutoData, clip: ClipConfig) -> dict[str, list[Path]]:
    """Build every stage's shards into ``data``; stage -> shard folders."""
    data = Path(data)
    shape = SyntheticConfig(count=1, frames=clip.num_frames, height=clip.height, width=clip.width, fps=clip.fps)
    size = dict(frames=clip.num_frames, height=clip.height, width=clip.width)
    build(SyntheticRecipe(shape.model_copy(update={"count": auto.synthetic_count})), data / "synthetic")
    videos = write_video_sources(data / "sources" / "videos", auto.coarse_count, shape)
    build(CoarseVideoRecipe(CoarseVideoConfig(src=videos, **size)), data / "coarse")
    fg_dir, bg_dir = write_copy_paste_sources(data / "sources", max(auto.frozen_count, auto.copy_paste_count), shape)
    build(CopyPasteRecipe(CopyPasteConfig(src=fg_dir, backgrounds=bg_dir, matte_plain_images=False, fps=clip.fps, **size)),
          data / "copy-paste")
    build(FrozenRecipe(FrozenConfig(src=data / "copy-paste")), data / "frozen")
    images = write_layered_image_sources(data / "sources" / "images", auto.static_count, shape)
    build(LayeredImagesRecipe(LayeredImagesConfig(src=images, matte_composites=False, fps=clip.fps, **size)),
          data / "layered-images")
    return {"base": [data / "synthetic", data / "coarse"], "motion": [data / "frozen"],
            "content": [data / "layered-images", data / "copy-paste"]}
