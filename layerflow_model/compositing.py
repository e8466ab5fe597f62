"""Decomposed layers refined by the compositing equation ``blend = alpha * fg + (1 - alpha) * bg``.

A decomposition is given the blend exactly; the model's alpha is a regression of it. Where
the model is unsure of a pixel (its alpha strictly between ``band``: edges, translucent
parts), the observed blend and the model's fg and bg colours pin the alpha down further: it
is the least-squares solution of the compositing equation, pulled towards the model's alpha
with weight ``prior_weight`` (so where fg and bg have the same colour, and the equation says
nothing, the model's alpha stays). The foreground colour there is then solved from the same
equation. Pixels the model calls clearly background or foreground, and the background layer,
are left as they are. The same equation brings a decomposition made at the model's size up to
the input's (:func:`upsample_by_compositing`), and builds a fill's blend at the size of its
given layer (:func:`upsample_fill`). Arrays as in :mod:`.clip`: float32 in [0, 1], channel-last.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from .clip import LayeredClip

PRIOR_WEIGHT = 0.1  # squared RGB distance (summed over channels) at which blend and model weigh the same
UNSURE_ALPHA = (0.05, 0.95)  # model alphas strictly inside are refined
MIN_ALPHA_FOR_COLOUR = 0.2  # the foreground colour is solved only where the refined alpha reaches this


def refine_by_compositing(layers: LayeredClip, prior_weight: float = PRIOR_WEIGHT,
                          band: tuple[float, float] = UNSURE_ALPHA) -> LayeredClip:
    """``layers`` (all four layers of one clip, the blend the observed one) with alpha and fg refined
    against the blend; bg and blend unchanged.

    Where ``band[0] < alpha < band[1]``: alpha becomes ``(<blend - bg, fg - bg> + w alpha) /
    (|fg - bg|^2 + w)`` clipped to [0, 1] (w = ``prior_weight``), and where that reaches
    ``MIN_ALPHA_FOR_COLOUR``, fg becomes ``(blend - (1 - alpha) bg) / alpha`` clipped to [0, 1].
    True layers are a fixed point: they come back unchanged.
    """
    layers.require("fg", "alpha", "bg", "blend", purpose="refining by compositing")
    if prior_weight <= 0:
        raise ValueError(f"prior_weight must be > 0 (it keeps alpha where fg and bg agree), got {prior_weight}")
    fg, alpha, bg, blend = layers.fg, layers.alpha, layers.bg, layers.blend
    difference = fg - bg
    solved = ((blend - bg) * difference).sum(-1) + prior_weight * alpha
    solved = np.clip(solved / ((difference * difference).sum(-1) + prior_weight), 0.0, 1.0)
    unsure = (alpha > band[0]) & (alpha < band[1])
    refined_alpha = np.where(unsure, solved, alpha).astype(np.float32)
    opaque_enough = (unsure & (refined_alpha >= MIN_ALPHA_FOR_COLOUR))[..., None]
    safe_alpha = np.maximum(refined_alpha, MIN_ALPHA_FOR_COLOUR)[..., None]
    solved_fg = np.clip((blend - (1.0 - safe_alpha) * bg) / safe_alpha, 0.0, 1.0)
    refined_fg = np.where(opaque_enough, solved_fg, fg).astype(np.float32)
    return replace(layers, alpha=refined_alpha, fg=refined_fg)


def upsample_by_compositing(layers: LayeredClip, blend: np.ndarray, refine: bool = True) -> LayeredClip:
    """``layers`` (fg, alpha, bg at the model's (T, h, w)) brought to the size of ``blend`` (T, H, W, 3),
    the observed scene at full size, in [0, 1]: each layer resized bicubically, the blend the one given,
    then (``refine``) alpha and fg re-solved against it by :func:`refine_by_compositing`, which sharpens
    the edges the resize blurs. Returns all four layers at (T, H, W), float32 in [0, 1].
    """
    layers.require("fg", "alpha", "bg", purpose="upsampling by compositing")
    if blend.ndim != 4 or blend.shape[0] != layers.num_frames or blend.shape[-1] != 3:
        raise ValueError(f"blend must be ({layers.num_frames}, H, W, 3) like the layers' frames, got {blend.shape}")
    size = blend.shape[1:3]
    upsampled = LayeredClip(fg=resize_frames(layers.fg, size), alpha=resize_frames(layers.alpha, size),
                            bg=resize_frames(layers.bg, size), blend=blend.astype(np.float32))
    return refine_by_compositing(upsampled) if refine else upsampled


def upsample_fill(layers: LayeredClip, given: LayeredClip) -> LayeredClip:
    """A fill's ``layers`` (fg, alpha, bg at the model's (T, h, w)) brought to the size of ``given``, its
    given layers at full size (fg and alpha, or bg; (T, H, W[, 3])): the made layers resized bicubically,
    the given ones as given, the blend their composite (the model's own blend, drawn at its size, would
    blur a given layer's edges). Returns all four layers at (T, H, W), float32 in [0, 1].
    """
    layers.require("fg", "alpha", "bg", purpose="upsampling a fill")
    if given.blend is not None or not given.present_layers():
        raise ValueError(f"a fill is given fg and alpha, or bg, not {given.present_layers()}")
    if given.num_frames != layers.num_frames:
        raise ValueError(f"given layers have {given.num_frames} frames, the fill {layers.num_frames}")
    made = {name: resize_frames(getattr(layers, name), given.size) for name in ("fg", "alpha", "bg")
            if getattr(given, name) is None}
    return replace(given, **made).with_blend()


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, h, w[, C]) -> (T, H, W[, C]) for ``size`` = (H, W): bicubic, clipped to [0, 1], float32."""
    height, width = size
    resized = [cv2.resize(frame, (width, height), interpolation=cv2.INTER_CUBIC) for frame in frames]
    return np.clip(np.stack(resized), 0.0, 1.0).astype(np.float32)
