"""A stage's final artifacts: the model or adapter it trained, and sample clips to look at.

- base: ``model/``, a ``LayerFlowPipeline.save_pretrained`` folder (safetensors).
- motion: ``adapter/pytorch_lora_weights.safetensors``, the motion LoRA (diffusers format).
- content: ``adapter/pytorch_lora_weights.safetensors``, the content LoRA, and ``model/``, the
  inference model: motion LoRA removed, content LoRA fused into the attention weights, so
  ``LayerFlowPipeline.from_pretrained(model/)`` is the final model with no adapter to load
  (load the adapter file onto the base model instead to keep it separate).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .latent_cache import LatentCache
from .lora import CONTENT, export_for_inference, save_adapter
from .preview import write_preview_gif
from .video_io import write_rgba_webm


def export_model(pipeline, folder: Path) -> Path:
    """Save the pipeline (no adapters attached) as a diffusers folder; return it."""
    pipeline.save_pretrained(folder, safe_serialization=True)
    return Path(folder)


def export_adapter(transformer, name: str, folder: Path) -> Path:
    """Save adapter ``name`` as ``folder/pytorch_lora_weights.safetensors``; return the folder."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    save_adapter(transformer, name, folder)
    return Path(folder)


def export_inference_model(pipeline, folder: Path) -> Path:
    """Remove the motion LoRA, fuse the content LoRA (scale 1) and save the pipeline; return the folder.

    The pipeline's transformer is left without adapters (the content LoRA fused in).
    """
    transformer = pipeline.transformer
    export_for_inference(transformer)
    transformer.fuse_lora(lora_scale=1.0, adapter_names=[CONTENT])
    transformer.unload_lora()
    return export_model(pipeline, folder)


def sample_prompts(cache: LatentCache, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt embeddings of ``count`` evenly spaced cached samples (B, 3, L, D), and empty ones alike."""
    index = torch.linspace(0, len(cache) - 1, count).round().long()
    embeds = cache.prompt_embeds_at(index)  # (B, 3, L, D)
    return embeds, cache.empty_embeds.expand_as(embeds)


def write_samples(pipeline, cache: LatentCache, folder: Path, count: int, num_inference_steps: int,
                  guidance_scale: float, fps: float, seed: int = 0) -> Path:
    """Generate ``count`` clips from cached prompts; write ``sample-i.gif`` (all layers) and ``sample-i.webm`` (RGBA fg)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if count == 0:
        return folder
    embeds, negative = sample_prompts(cache, count)
    device, dtype = pipeline.transformer.device, pipeline.transformer.dtype
    clips = pipeline(
        prompt_embeds=embeds.to(device, dtype),
        negative_prompt_embeds=negative.to(device, dtype),
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        generator=torch.Generator().manual_seed(seed),
    ).clips
    for i, clip in enumerate(clips):
        write_preview_gif(folder / f"sample-{i}.gif", clip, fps=fps)
        write_rgba_webm(folder / f"sample-{i}.webm", clip.fg, clip.alpha, fps=fps)
    return folder

