"""One training sample: a full layered clip, its per-layer prompts and where it came from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from layerflow_model.clip import LayeredClip, LayerPrompts

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")  # webdataset keys end at the first dot


@dataclass(frozen=True)
class LayeredSample:
    """A layered clip with everything the shard's ``json`` member records.

    ``clip`` holds all four layers (fg, alpha, bg, blend), float32 in [0, 1];
    ``extra`` holds recipe-specific fields (e.g. the synthetic world's ``attributes``).
    """

    key: str
    clip: LayeredClip
    prompts: LayerPrompts
    recipe: str
    source: str
    fps: float
    static: bool
    licence: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key):
            raise ValueError(f"LayeredSample.key must match {KEY_PATTERN.pattern}, got {self.key!r}")
        self.clip.require("fg", "alpha", "bg", "blend", purpose="a training sample")
        if self.fps <= 0:
            raise ValueError(f"LayeredSample.fps must be positive, got {self.fps}")

    def metadata(self) -> dict[str, Any]:
        """The ``json`` member: prompts, source, recipe, fps, frames, size, static, licence, extras."""
        height, width = self.clip.size
        return {
            "key": self.key,
            "prompts": {"fg": self.prompts.fg, "bg": self.prompts.bg, "blend": self.prompts.blend},
            "recipe": self.recipe,
            "source": self.source,
            "fps": self.fps,
            "frames": self.clip.num_frames,
            "height": height,
            "width": width,
            "static": self.static,
            "licence": self.licence,
            **self.extra,
        }

    def derive(self, **changes: Any) -> "LayeredSample":
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)


def sanitize_key(text: str) -> str:
    """Map any text to a valid sample key: runs of other characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "sample"
