"""Tasks as subsets of given layers, and the packing of layers into the model's frame axis.

The model sees one video per sample: the four sub-clips concatenated on the frame axis in
the order foreground (premultiplied over black), alpha (grey, repeated to 3 channels),
background, blend. A task is the set of sub-clips that are given (clean) rather than
generated:

=================  ==========================
task               given layers
=================  ==========================
generate           none
decompose          blend
fill_background    fg, alpha
fill_foreground    bg
=================  ==========================

Any other subset is allowed too (the general form); a foreground needs its alpha, since the
model's foreground is premultiplied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from enum import Enum

import numpy as np
import torch

from .clip import LayeredClip, unpremultiply
from .config import TaskKind

LAYER_ORDER = ("fg", "alpha", "bg", "blend")  # sub-clip order on the frame axis


class Task(str, Enum):
    """The four named tasks; each is a fixed set of given layers."""

    GENERATE = "generate"
    DECOMPOSE = "decompose"
    FILL_BACKGROUND = "fill_background"
    FILL_FOREGROUND = "fill_foreground"


TASK_GIVEN_LAYERS: dict[Task, tuple[str, ...]] = {
    Task.GENERATE: (),
    Task.DECOMPOSE: ("blend",),
    Task.FILL_BACKGROUND: ("fg", "alpha"),
    Task.FILL_FOREGROUND: ("bg",),
}


def given_sub_clips(given_frames: torch.Tensor) -> torch.Tensor:
    """Which sub-clips are given: given_frames (B, F) bool, four equal sub-clips on F -> (B, 4)
    bool in ``LAYER_ORDER``."""
    return given_frames.unflatten(1, (len(LAYER_ORDER), -1)).any(dim=2)


def task_kind(given: Sequence[str]) -> TaskKind:
    """What the model faces with these layers given: the blend (``decompose``), other layers
    (``fill``) or none (``generate``); model and sampler settings are set per kind."""
    return "decompose" if "blend" in given else "fill" if given else "generate"


def given_layers_for(task: Task | str | None, clip: LayeredClip | None) -> tuple[str, ...]:
    """The layers to condition on, from a task name and/or the layers a clip holds.

    With a task, the clip must hold that task's layers (extra layers are ignored); without
    one, every layer the clip holds is given (the general form). Raises ``ValueError`` naming
    what is missing.
    """
    if task is not None:
        try:
            task = Task(task)
        except ValueError:
            raise ValueError(f"unknown task {task!r}; choose one of {[t.value for t in Task]}") from None
        needed = TASK_GIVEN_LAYERS[task]
        if needed:
            if clip is None:
                raise ValueError(f"task {task.value!r} needs given layers {list(needed)}; none were given")
            clip.require(*needed, purpose=f"task {task.value!r}")
        return needed
    given = () if clip is None else clip.present_layers()
    if "fg" in given and "alpha" not in given:
        raise ValueError("a given foreground needs its alpha (the model's foreground is premultiplied)")
    return tuple(name for name in LAYER_ORDER if name in given)


def given_mask(given: tuple[str, ...]) -> torch.Tensor:
    """Layer names -> (4,) bool mask in :data:`LAYER_ORDER`."""
    unknown = set(given) - set(LAYER_ORDER)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; layers are {list(LAYER_ORDER)}")
    return torch.tensor([name in given for name in LAYER_ORDER])


def frame_mask(layer_mask: torch.Tensor, frames_per_layer: int) -> torch.Tensor:
    """Per-layer mask (B, 4) -> per-latent-frame mask (B, 4 * frames_per_layer)."""
    return layer_mask.repeat_interleave(frames_per_layer, dim=-1)


#################################################################################
#                         Layers <-> model video tensors                        #
#################################################################################


def clip_to_video(clip: LayeredClip) -> torch.Tensor:
    """A clip -> (4, T, 3, H, W) in [-1, 1], sub-clips in :data:`LAYER_ORDER`.

    Layers the clip lacks are zeros (mid-grey); the foreground is premultiplied over black.
    """
    frames, (height, width) = clip.num_frames, clip.size
    layers = {name: np.zeros((frames, height, width, 3), np.float32) for name in LAYER_ORDER}
    if clip.alpha is not None:
        layers["alpha"] = np.repeat(clip.alpha[..., None], 3, axis=-1)
        if clip.fg is not None:
            layers["fg"] = clip.fg_premultiplied()
    for name in ("bg", "blend"):
        if getattr(clip, name) is not None:
            layers[name] = getattr(clip, name)
    stacked = np.stack([layers[name] for name in LAYER_ORDER])  # (4, T, H, W, 3) in [0, 1]
    video = torch.from_numpy(stacked).permute(0, 1, 4, 2, 3)  # (4, T, 3, H, W)
    return video * 2.0 - 1.0


def video_to_clip(video: torch.Tensor) -> LayeredClip:
    """(4, T, 3, H, W) in [-1, 1] -> a full LayeredClip (alpha = channel mean, fg un-premultiplied)."""
    layers = ((video.float().clamp(-1, 1) + 1.0) / 2.0).permute(0, 1, 3, 4, 2).cpu().numpy()  # (4, T, H, W, 3)
    fg_pm, alpha_rgb, bg, blend = layers
    alpha = alpha_rgb.mean(axis=-1)  # (T, H, W)
    return LayeredClip(fg=unpremultiply(fg_pm, alpha), alpha=alpha, bg=bg, blend=blend)


def with_given_layers(clip: LayeredClip, given: LayeredClip, names: Sequence[str]) -> LayeredClip:
    """``clip`` with its layers ``names`` replaced by ``given``'s, unchanged.

    A given layer then comes back bit-exact whatever the codec's round trip does (float
    rounding at 8-bit boundaries; a lossy learned VAE), and a given foreground keeps its
    colour where its alpha is 0.
    """
    return replace(clip, **{name: getattr(given, name) for name in names})


def encode_layers(codec, video: torch.Tensor) -> torch.Tensor:
    """(B, 4, T, 3, H, W) in [-1, 1] -> latents (B, 4*f, C, h, w); each sub-clip encoded on its own."""
    b, n = video.shape[:2]
    latents = codec.encode_video(video.flatten(0, 1))  # (B*4, f, C, h, w)
    return latents.reshape(b, n * latents.shape[1], *latents.shape[2:])


def encode_clips(codec, clips: Sequence[LayeredClip]) -> torch.Tensor:
    """B full LayeredClips (values in [0, 1]) -> latents (B, 4*f, C, h, w) on the codec's device, in its dtype."""
    video = torch.stack([clip_to_video(clip) for clip in clips])  # (B, 4, T, 3, H, W) in [-1, 1]
    return encode_layers(codec, video.to(codec.device, codec.dtype))


def decode_layers(codec, latents: torch.Tensor) -> torch.Tensor:
    """Latents (B, 4*f, C, h, w) -> video (B, 4, T, 3, H, W), each sub-clip decoded on its own."""
    b, frames = latents.shape[:2]
    n = len(LAYER_ORDER)
    video = codec.decode_latents(latents.reshape(b * n, frames // n, *latents.shape[2:]))  # (B*4, T, 3, H, W)
    return video.reshape(b, n, *video.shape[1:])
