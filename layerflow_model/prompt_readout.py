"""A low-rank linear readout from the prompts to every latent position: the prompts' prior over the layers.

Through attention and the pooled prompts' timestep modulation the small transformer learns which
colour a prompt asks for but not where its object goes (benchmarks/MODEL_DESIGN.md, "A linear
readout of the prompts": a ridge regression from the same pooled prompts reads the matte back,
the transformer does not). This module is that map made part of the network: each prompt's mean token,
standardised, to ``rank`` numbers, to a value at every latent position of the four sub-clips.
The transformer adds it to its predicted clean layers; ``up`` starts at zero, so a new readout
changes nothing until it is trained. The prompts' mean tokens share most of their values, and
unstandardised the readout learns their differences slowly; so the readout starts with a
learnable scale and shift set from the training prompts to standardise them (each feature's
mean and spread, as the probe's), a data-dependent initialisation like Glow's ActNorm
(:meth:`PromptReadout.standardise_with`), and trains them with the rest.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .conditioning import LAYER_ORDER, given_sub_clips
from .config import NUM_PROMPT_LAYERS


MIN_PROMPT_SPREAD = 1e-3  # floor on a feature's spread, so a feature constant in training cannot blow up


class PromptReadout(nn.Module):
    """Pooled prompts -> a prior over the four sub-clips' latents, through ``rank`` numbers.

    The prior is laid out for ``layer_frames`` latent frames per sub-clip of ``height`` x
    ``width`` latents with ``channels`` channels; other clip shapes get it resized per sub-clip.
    """

    def __init__(self, prompt_dim: int, rank: int, layer_frames: int, channels: int, height: int, width: int):
        super().__init__()
        self.layout = (len(LAYER_ORDER), layer_frames, channels, height, width)
        self.prompt_scale = nn.Parameter(torch.ones(NUM_PROMPT_LAYERS, prompt_dim))  # (3, D)
        self.prompt_shift = nn.Parameter(torch.zeros(NUM_PROMPT_LAYERS, prompt_dim))  # (3, D)
        self.down = nn.Linear(NUM_PROMPT_LAYERS * prompt_dim, rank)
        self.up = nn.Linear(rank, math.prod(self.layout))
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    @property
    def untrained(self) -> bool:
        """True while the output weights are still zero: the prior is zero whatever the standardisation."""
        return not (self.up.weight.any() or self.up.bias.any())

    @torch.no_grad()
    def standardise_with(self, pooled: torch.Tensor) -> None:
        """Set scale and shift so that training prompts pooled (N, 3, D), each prompt's mean token,
        enter with mean 0 and spread 1 per feature."""
        self.prompt_scale.copy_(1.0 / pooled.std(dim=0).clamp(min=MIN_PROMPT_SPREAD))
        self.prompt_shift.copy_(-pooled.mean(dim=0) * self.prompt_scale)

    def forward(self, pooled: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
        """pooled (B, 3, D): each prompt's mean token, absent prompts zeros.

        Returns the prior (B, frames, C, height, width) in latent units, sub-clips on the frame
        axis in the order fg, alpha, bg, blend (``frames`` = 4 x frames per sub-clip).
        """
        codes = self.down((pooled * self.prompt_scale + self.prompt_shift).flatten(1))  # (B, r)
        prior = self.up(codes).view(-1, *self.layout)  # (B, 4, f, C, h, w)
        size = (frames // len(LAYER_ORDER), height, width)
        if (prior.shape[2], *prior.shape[-2:]) != size:
            batch, layers = prior.shape[:2]
            per_layer = prior.flatten(0, 1).transpose(1, 2)  # (B*4, C, f, h, w)
            per_layer = F.interpolate(per_layer, size=size, mode="trilinear", align_corners=False)
            prior = per_layer.transpose(1, 2).unflatten(0, (batch, layers))  # (B, 4, f', C, h', w')
        return prior.flatten(1, 2)  # (B, 4f, C, h, w)


def where_prompts_decide(prior: torch.Tensor, given_frames: torch.Tensor | None) -> torch.Tensor:
    """The prior on the sub-clips the prompts alone decide, zero elsewhere.

    Generation (nothing given): all four. Decomposition (the blend given): none, the layers are
    read from the blend. Filling (other layers given): the foreground and alpha when they are
    made, where the prompt says which way the object moves; not a made background, whose prompt
    the network already learns as well without the prior, nor the blend, both of which must
    agree with the given layers the network sees and the prior does not. prior (B, F, C, h, w);
    given_frames (B, F) bool, four equal sub-clips on F, or None (nothing given).
    """
    if given_frames is None:
        return prior
    layers = len(LAYER_ORDER)
    given = given_sub_clips(given_frames)  # (B, 4)
    is_foreground = torch.tensor([name in ("fg", "alpha") for name in LAYER_ORDER], device=given.device)  # (4,)
    blend = LAYER_ORDER.index("blend")
    decided = ~given & ~given[:, blend:blend + 1] & (is_foreground | ~given.any(dim=1, keepdim=True))  # (B, 4)
    frames = decided.repeat_interleave(given_frames.shape[1] // layers, dim=1)  # (B, F)
    return prior * frames.to(prior.dtype)[:, :, None, None, None]
