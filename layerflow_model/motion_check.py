"""The paper's mechanism, measured: the motion LoRA at scale 1 should make sampled clips static.

The content stage trains static images with the motion LoRA on (scale 1) and moving videos
with it off, so the motion LoRA carries "stillness" and the content LoRA learns appearance
only. :func:`motion_check` samples the same noise and prompts twice — motion LoRA at scale 1
(``static_change``) and at scale 0, which is exactly its removal (``free_change``) — and
measures the mean absolute frame-to-frame change of the blend in [0, 1] pixel units.
"""

from __future__ import annotations

import numpy as np
import torch

from .clip import LayeredClip
from .lora import set_motion_scale


def frame_change(clips: list[LayeredClip]) -> float:
    """Mean |blend[t+1] - blend[t]| over clips, frames, pixels and channels; blend in [0, 1]."""
    return float(np.mean([np.abs(np.diff(clip.blend, axis=0)).mean() for clip in clips]))


def sampled_change(pipeline, prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor,
                   num_inference_steps: int, guidance_scale: float, seed: int) -> float:
    """Sample clips for prompt_embeds (B, 3, L, D) (negatives the same shape) and return their frame change."""
    clips = pipeline(
        prompt_embeds=prompt_embeds,
        negative_prompt_embeds=negative_embeds,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        generator=torch.Generator().manual_seed(seed),
    ).clips
    return frame_change(clips)


def motion_check(pipeline, prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor,
                 num_inference_steps: int, guidance_scale: float, seed: int = 0) -> dict[str, float]:
    """``motion_check.static_change`` (motion LoRA at 1) and ``motion_check.free_change`` (removed).

    The pipeline's transformer must carry the motion adapter; it is left at scale 0.
    """
    arms = {}
    for name, scale in (("static_change", 1.0), ("free_change", 0.0)):
        set_motion_scale(pipeline.transformer, scale)
        arms[f"motion_check.{name}"] = sampled_change(
            pipeline, prompt_embeds, negative_embeds, num_inference_steps, guidance_scale, seed
        )
    arms["motion_check.ratio"] = arms["motion_check.free_change"] / max(arms["motion_check.static_change"], 1e-12)
    return arms
