"""Latent codecs: video (B, F, 3, H, W) in [-1, 1] <-> latents (B, f, C, h, w).

Three codecs share one interface (``encode_video``, ``decode_latents``, ``latent_channels``,
``spatial_compression``, ``latent_frames``):

- :class:`PixelUnshuffleCodec` — the small default. A lossless space-to-depth rearrangement
  (``factor`` x ``factor`` pixels -> one token of 3 x factor^2 channels), no temporal
  compression and no weights. It needs no training, cannot lose alpha detail, and keeps the
  model's errors the model's own; its cost is more channels per token.
- :class:`FrameVAECodec` — a small learned codec: diffusers' ``AutoencoderKL`` on each frame
  (no temporal compression), trained on the layers by ``benchmarks/train_frame_vae.py`` and
  loaded from a local folder; fewer channels per token than pixel-unshuffle, but lossy.
- :class:`CogVideoXVAECodec` — the paper's codec: diffusers' CogVideoX VAE from a local
  folder (4x temporal, 8x spatial compression, 16 channels), latents scaled by the VAE's
  ``scaling_factor``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, AutoencoderKLCogVideoX, ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from .config import vae_spatial_compression


class PixelUnshuffleCodec(ModelMixin, ConfigMixin):
    """Lossless space-to-depth codec; see the module docstring."""

    @register_to_config
    def __init__(self, factor: int = 4):
        super().__init__()
        self.factor = factor
        # No weights; an empty buffer lets diffusers read the codec's device and dtype.
        self.register_buffer("device_anchor", torch.zeros(0), persistent=False)

    def save_pretrained(self, save_directory, **kwargs) -> None:
        """Write ``config.json`` only: the codec has no weights."""
        self.save_config(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, subfolder: str | None = None, **kwargs):
        """Read ``config.json`` (loader options such as ``torch_dtype`` do not apply)."""
        return cls.from_config(cls.load_config(pretrained_model_name_or_path, subfolder=subfolder))

    @property
    def latent_channels(self) -> int:
        return 3 * self.factor**2

    @property
    def spatial_compression(self) -> int:
        return self.factor

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames for ``num_frames`` video frames (no temporal compression)."""
        return num_frames

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, H, W) in [-1, 1] -> (B, F, 3*factor^2, H/factor, W/factor), same values."""
        b, f, c, h, w = video.shape
        if h % self.factor or w % self.factor:
            raise ValueError(f"video size {h}x{w} is not a multiple of the codec factor {self.factor}")
        latents = F.pixel_unshuffle(video.reshape(b * f, c, h, w), self.factor)  # (B*F, C', h, w)
        return latents.reshape(b, f, *latents.shape[1:])

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, F, 3*factor^2, h, w) -> video (B, F, 3, h*factor, w*factor), exact inverse of encode."""
        b, f, c, h, w = latents.shape
        video = F.pixel_shuffle(latents.reshape(b * f, c, h, w), self.factor)  # (B*F, 3, H, W)
        return video.reshape(b, f, *video.shape[1:])


class VAEShape:
    """``latent_channels`` and ``spatial_compression`` of a diffusers VAE, read from its config."""

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    @property
    def spatial_compression(self) -> int:
        return vae_spatial_compression(self.config.block_out_channels)


class FrameVAECodec(VAEShape, AutoencoderKL):
    """A per-frame ``AutoencoderKL`` behind the codec interface; latents are the posterior mode times
    ``scaling_factor`` (set at training to one over the latents' standard deviation)."""

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames for ``num_frames`` video frames (no temporal compression)."""
        return num_frames

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, H, W) in [-1, 1] -> scaled latents (B, F, C, H/s, W/s), s = ``spatial_compression``."""
        b, f = video.shape[:2]
        posterior = self.encode(video.flatten(0, 1).to(self.dtype)).latent_dist
        latents = posterior.mode() * self.config.scaling_factor  # (B*F, C, h, w)
        return latents.reshape(b, f, *latents.shape[1:])

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, F, C, h, w) -> video (B, F, 3, H, W), roughly in [-1, 1]."""
        b, f = latents.shape[:2]
        video = self.decode((latents.flatten(0, 1) / self.config.scaling_factor).to(self.dtype)).sample
        return video.reshape(b, f, *video.shape[1:]).float()


class CogVideoXVAECodec(VAEShape, AutoencoderKLCogVideoX):
    """The CogVideoX VAE behind the codec interface; loads a stock ``vae/`` folder unchanged."""

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames for ``num_frames`` video frames: 1 + (F - 1) // 4 (e.g. 16 -> 4)."""
        return 1 + (num_frames - 1) // self.config.temporal_compression_ratio

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, F, 3, H, W) in [-1, 1] -> scaled latents (B, 1+(F-1)//4, 16, H/8, W/8), posterior mode."""
        posterior = self.encode(video.permute(0, 2, 1, 3, 4).to(self.dtype)).latent_dist  # (B, 3, F, H, W) in
        latents = posterior.mode() * self.config.scaling_factor  # (B, C, f, h, w)
        return latents.permute(0, 2, 1, 3, 4)  # (B, f, C, h, w)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, f, C, h, w) -> video (B, F, 3, H, W), roughly in [-1, 1]."""
        latents = latents.permute(0, 2, 1, 3, 4) / self.config.scaling_factor  # (B, C, f, h, w)
        video = self.decode(latents.to(self.dtype)).sample  # (B, 3, F, H, W)
        return video.permute(0, 2, 1, 3, 4).float()
