"""Frozen clips for the motion-LoRA stage: one random frame of a sample, repeated.

:func:`freeze` is the transform; recipe ``frozen`` applies it to every sample of the
shards in ``src`` (typically a copy-paste build), one item per source shard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from layerflow_model.clip import LayeredClip

from .framing import repeat_frame
from .inputs import SkipInput
from .recipe import RecipeConfig, item_rng
from .sample import LayeredSample
from .shards import list_shards, read_shard


def freeze(sample: LayeredSample, rng: np.random.Generator) -> LayeredSample:
    """A copy of ``sample`` whose every layer repeats one random frame; flagged static.

    The key gets a ``-frozen`` suffix; json gains ``frozen_frame`` and ``derived_from``.
    """
    clip = sample.clip
    frame = int(rng.integers(clip.num_frames))
    layers = {name: repeat_frame(getattr(clip, name)[frame], clip.num_frames) for name in clip.present_layers()}
    return sample.derive(
        key=f"{sample.key}-frozen",
        clip=LayeredClip(**layers),
        recipe=FrozenRecipe.name,
        static=True,
        extra={**sample.extra, "frozen_frame": frame,
               "derived_from": {"key": sample.key, "recipe": sample.recipe}},
    )


class FrozenConfig(RecipeConfig):
    """Shards under ``src`` to freeze."""

    recipe: Literal["frozen"] = "frozen"
    src: Path = Field(description="folder of shards (e.g. a copy-paste build)")
    seed: int = Field(default=0, ge=0, description="seeds the frame chosen per sample")


class FrozenRecipe:
    """One item per source shard; every sample of it frozen."""

    name: ClassVar[str] = "frozen"

    def __init__(self, config: FrozenConfig) -> None:
        self.config = config

    def plan(self) -> list[str]:
        if not Path(self.config.src).is_dir():
            raise ValueError(f"src {self.config.src} does not exist or is not a directory")
        return [p.name for p in list_shards(self.config.src)]

    def make(self, item: str) -> Iterator[LayeredSample]:
        path = Path(self.config.src) / item
        try:
            for sample in read_shard(path):
                yield freeze(sample, item_rng(self.config.seed, sample.key))
        except (OSError, EOFError, ValueError, KeyError) as error:  # corrupt or truncated shard
            raise SkipInput(path, f"not a readable shard: {type(error).__name__}: {error}") from error
