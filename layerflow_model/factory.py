"""Build a LayerFlowPipeline from a :class:`ModelConfig`: fresh weights, or a local CogVideoX folder.

``tiny`` and ``small`` start from random weights (trained from scratch). A config with a
``pretrained_path`` (``cogvideox-2b``) loads a local diffusers CogVideoX folder
(``transformer/``, ``vae/``, ``text_encoder/``, ``tokenizer/``): the stock transformer weights
load unchanged into :class:`LayerFlowTransformer`, whose only new parameter, the layer
embedding, starts at zero. Nothing is downloaded.
"""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from .codec import CogVideoXVAECodec, FrameVAECodec, PixelUnshuffleCodec
from .config import ModelConfig
from .pipeline import LayerFlowPipeline
from .text_encoders import build_text_encoder, text_embed_dim
from .transformer import OUR_ARGUMENTS, LayerFlowTransformer, transformer_kwargs


def build_pipeline(config: ModelConfig, seed: int = 0) -> LayerFlowPipeline:
    """A pipeline for ``config``: random init, or the weights in ``config.pretrained_path``."""
    if config.needs_pretrained_folder and config.pretrained_path is None:
        raise ValueError(
            f"pretrained_path: config {config.name!r} loads its VAE/T5 from a local diffusers CogVideoX "
            "folder; set pretrained_path to it (nothing is downloaded)"
        )
    if config.pretrained_path is not None and not (config.pretrained_path / "transformer").is_dir():
        raise ValueError(f"pretrained_path {config.pretrained_path} has no transformer/ folder (diffusers layout)")
    tokenizer, text_encoder = build_text_encoder(config.text_encoder, config.pretrained_path, seed=seed)
    codec = _build_codec(config)
    latent_size = (config.clip.height // codec.spatial_compression, config.clip.width // codec.spatial_compression)
    kwargs = transformer_kwargs(config, codec.latent_channels, latent_size, text_embed_dim(text_encoder),
                                codec.latent_frames(config.clip.num_frames))
    if config.pretrained_path is not None:
        # Stock checkpoints lack the layer embedding (and the pooled prompts' projection, the prompt readout): built
        # zero-init, the rest loaded.
        transformer = LayerFlowTransformer.from_pretrained(
            config.pretrained_path,
            subfolder="transformer",
            max_text_seq_length=kwargs["max_text_seq_length"],
            **{name: kwargs[name] for name in OUR_ARGUMENTS},
            low_cpu_mem_usage=False,
            use_safetensors=True,
        )
    else:
        torch.manual_seed(seed)
        transformer = LayerFlowTransformer(**kwargs)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=config.objective.shift)
    return LayerFlowPipeline(
        transformer=transformer,
        vae=codec,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        num_frames=config.clip.num_frames,
        height=config.clip.height,
        width=config.clip.width,
        fps=config.clip.fps,
        prediction=config.objective.prediction,
        noise=config.objective.noise,
        **config.sampler.model_dump(),
    )


def _build_codec(config: ModelConfig):
    if config.codec.kind == "pixel_unshuffle":
        return PixelUnshuffleCodec(factor=config.codec.factor)
    if config.codec.kind == "frame_vae":
        return FrameVAECodec.from_pretrained(config.codec.path, use_safetensors=True).eval()
    return CogVideoXVAECodec.from_pretrained(config.pretrained_path, subfolder="vae", use_safetensors=True).eval()
