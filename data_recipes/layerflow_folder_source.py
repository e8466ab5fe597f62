"""Recipe ``layerflow-folder``: the official LayerFlow layout, ``SEQ/{fg,bg,bl,mask}/NNNN.png``.

Prompts come from the ``meta*.json`` beside the sequences; reading (including the
official fg-over-grey convention) is :mod:`layerflow_model.layerflow_folder`'s. The
first ``frames`` frames of each sequence make one clip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from layerflow_model.clip import LayeredClip, LayerPrompts
from layerflow_model.layerflow_folder import (
    FG_MATTE_GREY,
    layerflow_sequence_dirs,
    read_layerflow_prompts,
    read_layerflow_sequence,
)

from .framing import fit_foreground, fit_frames
from .inputs import SkipInput
from .recipe import FolderSourceConfig, short_hash
from .sample import LayeredSample, sanitize_key


class LayerflowFolderConfig(FolderSourceConfig):
    """Sequences directly under ``src`` (e.g. ``DAVIS/480p``)."""

    recipe: Literal["layerflow-folder"] = "layerflow-folder"
    fg_matte: float | None = Field(default=FG_MATTE_GREY, ge=0, le=1,
                                   description="grey under the fg frames (official: 126/255); None: straight")
    fps: float = Field(default=8.0, gt=0, description="frame rate (the layout stores none)")


class LayerflowFolderRecipe:
    """One item per sequence folder."""

    name: ClassVar[str] = "layerflow-folder"

    def __init__(self, config: LayerflowFolderConfig) -> None:
        self.config = config

    def plan(self) -> list[str]:
        return [p.name for p in layerflow_sequence_dirs(self.config.src)]

    def make(self, item: str) -> Iterator[LayeredSample]:
        config, seq_dir = self.config, Path(self.config.src) / item
        try:
            prompts = read_layerflow_prompts(seq_dir.parent).get(seq_dir.name)
            clip = read_layerflow_sequence(seq_dir, fg_matte=config.fg_matte)
        except (ValueError, OSError) as error:
            raise SkipInput(seq_dir, str(error)) from error
        if clip.num_frames < config.frames:
            raise SkipInput(seq_dir, f"sequence has {clip.num_frames} frames, fewer than the {config.frames} requested")
        fg, alpha = fit_foreground(clip.fg[:config.frames], clip.alpha[:config.frames], config.size)
        yield LayeredSample(
            key=f"layerflow-folder-{sanitize_key(seq_dir.name)[:48]}-{short_hash(item)}",
            clip=LayeredClip(fg=fg, alpha=alpha, bg=fit_frames(clip.bg[:config.frames], config.size),
                             blend=fit_frames(clip.blend[:config.frames], config.size)),
            prompts=prompts or LayerPrompts(fg="", bg="", blend=""),
            recipe=self.name,
            source=item,
            fps=config.fps,
            static=False,
            licence=config.licence,
        )
