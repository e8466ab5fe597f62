"""The layered clip: foreground, alpha, background and blend of one short video.

All arrays are float32 in [0, 1], channel-last, with a leading frame axis:

- ``fg``    (T, H, W, 3)  foreground colour, *straight* (not premultiplied)
- ``alpha`` (T, H, W)     foreground opacity
- ``bg``    (T, H, W, 3)  clean background
- ``blend`` (T, H, W, 3)  the scene, ``alpha * fg + (1 - alpha) * bg``

Any subset of layers may be present (a conditioning input holds only the given
layers); :meth:`LayeredClip.require` names what a caller needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

LAYER_NAMES = ("fg", "alpha", "bg", "blend")


@dataclass(frozen=True)
class LayerPrompts:
    """Per-layer prompts of one clip; the alpha layer has none (as in the paper)."""

    fg: str
    bg: str
    blend: str

    def as_list(self) -> list[str]:
        """[fg, bg, blend], the order the model encodes them in."""
        return [self.fg, self.bg, self.blend]


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Blend a straight foreground over a background.

    fg, bg: (T, H, W, 3) in [0, 1]; alpha: (T, H, W) in [0, 1].
    Returns (T, H, W, 3) in [0, 1]: ``alpha * fg + (1 - alpha) * bg``.
    """
    a = alpha[..., None]
    return (a * fg + (1.0 - a) * bg).astype(np.float32)


def premultiply(fg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight colour (T, H, W, 3) and alpha (T, H, W) -> colour over black, (T, H, W, 3) in [0, 1]."""
    return (fg * alpha[..., None]).astype(np.float32)


def unpremultiply(fg_premultiplied: np.ndarray, alpha: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Colour over black (T, H, W, 3) and alpha (T, H, W) -> straight colour in [0, 1].

    Where ``alpha <= eps`` the colour is undefined and set to 0.
    """
    a = alpha[..., None]
    straight = np.where(a > eps, fg_premultiplied / np.maximum(a, eps), 0.0)
    return np.clip(straight, 0.0, 1.0).astype(np.float32)


def _expected_ndim(name: str) -> int:
    return 3 if name == "alpha" else 4


@dataclass(frozen=True)
class LayeredClip:
    """One clip's layers; see the module docstring for shapes and ranges."""

    fg: np.ndarray | None = None
    alpha: np.ndarray | None = None
    bg: np.ndarray | None = None
    blend: np.ndarray | None = None

    def __post_init__(self) -> None:
        present = self.present_layers()
        if not present:
            raise ValueError("LayeredClip needs at least one of fg, alpha, bg, blend")
        for name in present:
            array = getattr(self, name)
            ndim = _expected_ndim(name)
            shape_doc = "(T, H, W)" if ndim == 3 else "(T, H, W, 3)"
            if not isinstance(array, np.ndarray) or array.ndim != ndim or (ndim == 4 and array.shape[-1] != 3):
                got = getattr(array, "shape", type(array).__name__)
                raise ValueError(f"LayeredClip.{name} must be a {shape_doc} array, got {got}")
            if array.dtype != np.float32:
                object.__setattr__(self, name, array.astype(np.float32))
        reference = present[0]
        ref_shape = getattr(self, reference).shape[:3]
        for name in present[1:]:
            shape = getattr(self, name).shape[:3]
            if shape != ref_shape:
                raise ValueError(
                    f"LayeredClip layers disagree: {reference} is (T, H, W) = {ref_shape} "
                    f"but {name} is {shape}; every layer needs the same frame count and size"
                )

    def present_layers(self) -> tuple[str, ...]:
        """Names of the layers this clip holds, in the order fg, alpha, bg, blend."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not None)

    def require(self, *names: str, purpose: str = "this operation") -> None:
        """Raise ``ValueError`` naming every layer in ``names`` that the clip lacks."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(
                f"{purpose} needs layers {list(names)}; missing {missing} "
                f"(clip has {list(self.present_layers())})"
            )

    @property
    def num_frames(self) -> int:
        return getattr(self, self.present_layers()[0]).shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of every layer."""
        return getattr(self, self.present_layers()[0]).shape[1:3]

    def with_blend(self) -> "LayeredClip":
        """A copy whose blend is recomputed from fg, alpha and bg by :func:`composite`."""
        self.require("fg", "alpha", "bg", purpose="compositing")
        return replace(self, blend=composite(self.fg, self.alpha, self.bg))

    def fg_premultiplied(self) -> np.ndarray:
        """Foreground over black, (T, H, W, 3) in [0, 1] — the form the model sees."""
        self.require("fg", "alpha", purpose="premultiplying the foreground")
        return premultiply(self.fg, self.alpha)

    def subset(self, *names: str) -> "LayeredClip":
        """A clip holding only ``names`` (each must be present)."""
        self.require(*names, purpose="taking a subset")
        return LayeredClip(**{n: getattr(self, n) for n in names})

    @classmethod
    def from_uint8(cls, **layers: np.ndarray) -> "LayeredClip":
        """Build from uint8 arrays in [0, 255] (same shapes as the fields)."""
        return cls(**{k: v.astype(np.float32) / 255.0 for k, v in layers.items() if v is not None})

    def to_uint8(self) -> dict[str, np.ndarray]:
        """Present layers as uint8 arrays in [0, 255], rounded."""
        return {n: to_uint8(getattr(self, n)) for n in self.present_layers()}


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Float array in [0, 1] -> uint8 in [0, 255], clipped and rounded."""
    return np.clip(np.rint(np.asarray(array, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def flip_clip(clip: LayeredClip, axes: tuple[int, ...]) -> LayeredClip:
    """``clip`` with every layer flipped along ``axes`` of (T, H, W[, 3]): (2,) left-right, (1,) upside
    down, (0,) backwards in time; () returns it as is. Flipping twice gives the clip back."""
    if not axes:
        return clip
    return LayeredClip(**{n: np.ascontiguousarray(np.flip(getattr(clip, n), axes)) for n in clip.present_layers()})


def average_clips(clips: Sequence[LayeredClip], starts: Sequence[int] | None = None,
                  frame_weights: np.ndarray | None = None) -> LayeredClip:
    """Per-frame weighted mean of clips of T frames that hold the same layers at the same size.

    starts: each clip's first frame in the result, which has ``max(starts) + T`` frames, every
    one covered by some clip (default: all 0, a plain mean); frame_weights: (T,) > 0, the weight
    of each of a clip's frames (default all 1). ``fg`` is averaged premultiplied by ``alpha``
    and divided back, so a colour counts by its opacity. Values stay in [0, 1].
    """
    num_frames = clips[0].num_frames
    starts = [0] * len(clips) if starts is None else starts
    weights = np.ones(num_frames, np.float32) if frame_weights is None else frame_weights.astype(np.float32)
    length = max(starts) + num_frames
    names = clips[0].present_layers()
    sums = {n: np.zeros((length, *getattr(clips[0], n).shape[1:]), np.float32) for n in names}
    total = np.zeros(length, np.float32)
    for clip, start in zip(clips, starts, strict=True):
        frames = slice(start, start + num_frames)
        for name in names:
            layer = clip.fg_premultiplied() if name == "fg" else getattr(clip, name)
            sums[name][frames] += weights.reshape(-1, *[1] * (layer.ndim - 1)) * layer
        total[frames] += weights
    means = {n: layer_sum / total.reshape(-1, *[1] * (layer_sum.ndim - 1)) for n, layer_sum in sums.items()}
    if "fg" in means:
        means["fg"] = unpremultiply(means["fg"], means["alpha"])
    return LayeredClip(**means)
