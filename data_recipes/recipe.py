"""What every recipe is: a typed config, a plan of work items, and samples made per item.

A recipe turns one *item* (a string: a seed, a file name, a JSON pair of file names) into
zero or more :class:`LayeredSample`. Items are planned up front so a build can split
them into chunks (one shard each); every item carries its own randomness, so a
sample does not depend on which chunk it lands in. A file item is named relative to
the recipe's source folder, so a sample (its key, its random draws, its ``source``) and
the shards' content hash do not depend on where that folder lies.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from collections.abc import Iterable
from typing import ClassVar, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .sample import LayeredSample

UNKNOWN_LICENCE = "unknown: check the licence of the source data before redistributing"


class RecipeConfig(BaseModel):
    """Base of every recipe's config: immutable, unknown keys rejected, errors name the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    licence: str = Field(default=UNKNOWN_LICENCE, description="provenance / licence string stored in each sample")


class ClipShapeConfig(RecipeConfig):
    """Frames per clip and an optional output size (None keeps the source size)."""

    frames: int = Field(default=16, gt=0, description="frames per clip; shorter sources are skipped")
    height: int | None = Field(default=None, gt=0, description="output height in pixels (with width)")
    width: int | None = Field(default=None, gt=0, description="output width in pixels (with height)")

    @model_validator(mode="after")
    def _size_pair(self) -> "ClipShapeConfig":
        if (self.height is None) != (self.width is None):
            raise ValueError("height and width must be given together (or neither, to keep the source size)")
        return self

    @property
    def size(self) -> tuple[int, int] | None:
        """(H, W), or None to keep the source size."""
        return None if self.height is None else (self.height, self.width)


class FolderSourceConfig(ClipShapeConfig):
    """A recipe reading files from a source folder."""

    src: Path = Field(description="source folder")
    max_pixels: int = Field(default=40_000_000, gt=0, description="largest image/frame accepted (bomb guard)")


class Recipe(Protocol):
    """A recipe: ``plan()`` lists work items, ``make(item)`` yields that item's samples.

    ``make`` raises :class:`data_recipes.inputs.SkipInput` for bad input (samples
    already yielded for the item are kept). ``plan`` raises ``ValueError`` when the
    config cannot work at all (e.g. a missing source folder).
    """

    name: ClassVar[str]
    config: RecipeConfig

    def plan(self) -> list[str]: ...

    def make(self, item: str) -> Iterable[LayeredSample]: ...


def item_rng(seed: int, item: str) -> np.random.Generator:
    """A generator determined by (seed, item) alone, so a sample never depends on its chunk."""
    digest = hashlib.sha256(f"{seed}:{item}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def short_hash(text: str, length: int = 8) -> str:
    """A short stable hex digest of ``text`` (for sample keys)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
