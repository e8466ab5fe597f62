"""An encoder from a clip's clean layers to its per-clip noise: the posterior of a conditional VAE.

A one-step sampler on per-clip noise makes one random choice per clip (where the object starts,
how large it is, ...) from one value per latent channel. Trained on the squared error it
ignores that noise and returns the mean of what the prompts allow; trained on the nearest of a
few draws (``objective.loss`` "nearest_draw") it learns only as much as a handful of candidates
tell it. With ``objective.loss`` "encoded_noise" this module instead reads each training clip's
choice off its own layers (Kingma & Welling 2014; a conditional VAE, Sohn et al. 2015): it gives
a mean and log-variance per latent channel, the clip's noise is drawn from them, and a KL term
keeps them near the standard normal the sampler draws from at inference. The module is used in
training only; its output layer starts at zero, so a new encoder gives standard normal noise,
the per-clip noise of before.
"""

from __future__ import annotations

import torch
from torch import nn

REDUCED_CHANNELS = 8  # latent channels each position is first reduced to
HIDDEN = 256  # width of the encoder's hidden layer


class NoiseEncoder(nn.Module):
    """Clean latents (B, F, C, h, w) of all four sub-clips -> per-channel mean and log-variance, (B, C) each.

    The layout (``frames`` = F, ``channels`` = C, ``height`` x ``width``) is fixed at construction.
    """

    def __init__(self, frames: int, channels: int, height: int, width: int):
        super().__init__()
        self.layout = (frames, channels, height, width)
        self.reduce = nn.Linear(channels, REDUCED_CHANNELS)
        self.hidden = nn.Linear(frames * REDUCED_CHANNELS * height * width, HIDDEN)
        self.out = nn.Linear(HIDDEN, 2 * channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latents (B, F, C, h, w) in the codec's units -> (mean, log_var), each (B, C)."""
        if tuple(latents.shape[1:]) != self.layout:
            raise ValueError(f"the noise encoder reads latents of shape (B, {', '.join(map(str, self.layout))}), "
                             f"got {tuple(latents.shape)}")
        reduced = self.reduce(latents.movedim(2, -1))  # (B, F, h, w, 8)
        features = nn.functional.silu(self.hidden(reduced.flatten(1)))  # (B, HIDDEN)
        mean, log_var = self.out(features).chunk(2, dim=1)  # (B, C) each
        return mean, log_var


def draw_encoded(mean: torch.Tensor, log_var: torch.Tensor, generator=None) -> torch.Tensor:
    """One draw per row from N(mean, exp(log_var)), (B, C), differentiable in both (reparametrised)."""
    eps = torch.randn(mean.shape, generator=generator).to(mean)
    return mean + (0.5 * log_var).exp() * eps


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, 1)) summed over channels, in nats: (B, C) each -> (B,)."""
    return 0.5 * (mean**2 + log_var.exp() - log_var - 1.0).sum(dim=1)
