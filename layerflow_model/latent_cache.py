"""Latents and prompt embeddings precomputed once per shard set, so training reads only tensors.

The codec encodes all four sub-clips of every sample and the text encoder its three
per-layer prompts, plus the empty prompts that text dropout swaps in. The result is one
safetensors file under ``cache_dir/<key>/``, where the key hashes the shard folders'
content hashes (from their ``manifest.json``) with everything about the model that changes
the tensors: codec, text encoder (a probe of its outputs, so random test encoders count),
clip shape. Tensors are stored as float16 (the pixel codec's values k/255*2-1 to within
5e-4), kept so in memory, and widened to float32 a batch at a time.

This module reads shards through ``data_recipes`` (the data library) and nothing else of it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from data_recipes.manifest import MANIFEST_NAME, read_manifest
from data_recipes.shards import iter_samples

from .conditioning import encode_clips
from .config import ModelConfig
from .pipeline import EMPTY_PROMPTS
from .text_encoders import encode_layer_prompts, encode_prompts
from .video_io import atomic_output

CACHE_FILE = "cache.safetensors"
STORE_DTYPE = torch.float16
ENCODE_BATCH = 16
_PROBE_PROMPTS = ["a red circle moving left", "blue and white stripes"]


@dataclass(frozen=True)
class LatentCache:
    """Precomputed training inputs of N samples, as stored (float16); read them through the ``*_at`` methods.

    latents (N, 4f, C, h, w): the four sub-clips' latents (fg, alpha, bg, blend);
    prompt_embeds (N, 3, L, D): fg, bg, blend prompts; empty_embeds (3, L, D) float32: empty prompts;
    static (N,) bool: the sample does not move (frozen clip or still image); keys: sample keys.
    """

    latents: torch.Tensor
    prompt_embeds: torch.Tensor
    empty_embeds: torch.Tensor
    static: torch.Tensor
    keys: list[str]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def frames_per_layer(self) -> int:
        return self.latents.shape[1] // 4

    def latents_at(self, index: torch.Tensor) -> torch.Tensor:
        """Latents of the samples at ``index`` (B,): (B, 4f, C, h, w) float32."""
        return self.latents[index].float()

    def prompt_embeds_at(self, index: torch.Tensor) -> torch.Tensor:
        """Prompt embeddings of the samples at ``index`` (B,): (B, 3, L, D) float32."""
        return self.prompt_embeds[index].float()

    def pooled_prompt_embeds(self) -> torch.Tensor:
        """Each sample's per-layer mean prompt token: (N, 3, D) float32."""
        return self.prompt_embeds.mean(dim=2, dtype=torch.float32)


def data_content_hash(folder: Path) -> str:
    """The content hash a shard folder's ``manifest.json`` records; ``ValueError`` names a missing one."""
    if not (Path(folder) / MANIFEST_NAME).is_file():
        raise ValueError(f"data: {folder} has no {MANIFEST_NAME}; build shard folders with the data flow")
    return read_manifest(folder).content_hash


def cache_key(folders: list[Path], model_config: ModelConfig, pipeline) -> str:
    """Hash of (the folders' content hashes, codec, text encoder, clip shape): names the cache."""
    parts = {
        "data": [data_content_hash(folder) for folder in folders],
        "model": model_config.model_dump(mode="json", include={"codec", "text_encoder", "clip", "pretrained_path"}),
        "text_probe": _text_probe(pipeline),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _text_probe(pipeline) -> str:
    """A fingerprint of the text encoder: its outputs on fixed prompts, rounded, hashed."""
    embeds = encode_prompts(pipeline.tokenizer, pipeline.text_encoder, _PROBE_PROMPTS, pipeline.tokens_per_prompt)
    return hashlib.sha256(np.round(embeds.cpu().numpy(), 3).tobytes()).hexdigest()


def load_or_build_cache(pipeline, folders: list[Path], model_config: ModelConfig, cache_dir: Path) -> tuple[LatentCache, Path]:
    """The cache for these shard folders and this model, built on first use; returns it and its file."""
    path = Path(cache_dir) / cache_key(folders, model_config, pipeline) / CACHE_FILE
    if not path.is_file():
        _build_cache(pipeline, folders, path)
    return read_cache(path), path


def _build_cache(pipeline, folders: list[Path], path: Path) -> None:
    """Encode the folders and write the cache file; the stored tensors are freed before it is read back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors, keys = _encode_folders(pipeline, folders)
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata={"keys": json.dumps(keys)})


def read_cache(path: Path) -> LatentCache:
    """Read a cache file written by :func:`load_or_build_cache`; its tensors stay float16 (half the memory)."""
    with safe_open(str(path), framework="pt") as f:
        keys = json.loads(f.metadata()["keys"])
    tensors = load_file(str(path))
    return LatentCache(
        latents=tensors["latents"],
        prompt_embeds=tensors["prompt_embeds"],
        empty_embeds=tensors["empty_embeds"].float(),
        static=tensors["static"].bool(),
        keys=keys,
    )


@torch.no_grad()
def _encode_folders(pipeline, folders: list[Path]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The cache's tensors in ``STORE_DTYPE``, each batch narrowed as it is encoded (no float32 copy of the whole);
    a progress bar counts the clips against the folders' manifests."""
    latents, embeds, static, keys = [], [], [], []
    progress = tqdm(total=sum(read_manifest(folder).total for folder in folders), desc="encoding the latent cache",
                    unit="clip")

    def encode(batch: list) -> None:
        latents.append(_encode_clips(pipeline, batch))
        embeds.append(_encode_prompts(pipeline, [s.prompts for s in batch]))
        progress.update(len(batch))

    with progress:
        for folder in folders:
            batch = []
            for sample in iter_samples(folder):
                batch.append(sample)
                if len(batch) == ENCODE_BATCH:
                    encode(batch)
                    batch = []
                static.append(sample.static)
                keys.append(sample.key)
            if batch:
                encode(batch)
    if not keys:
        raise ValueError(f"data: the shard folders {[str(f) for f in folders]} hold no samples")
    return {
        "latents": torch.cat(latents),  # (N, 4f, C, h, w)
        "prompt_embeds": torch.cat(embeds),  # (N, 3, L, D)
        "empty_embeds": _encode_prompts(pipeline, [EMPTY_PROMPTS])[0],  # (3, L, D)
        "static": torch.tensor(static, dtype=torch.uint8),  # (N,)
    }, keys


def _encode_clips(pipeline, samples) -> torch.Tensor:
    """Samples -> latents (B, 4f, C, h, w), ``STORE_DTYPE`` on the CPU."""
    return encode_clips(pipeline.vae, [s.clip for s in samples]).cpu().to(STORE_DTYPE)


def _encode_prompts(pipeline, prompts) -> torch.Tensor:
    """Per-layer prompts -> (B, 3, L, D), ``STORE_DTYPE`` on the CPU."""
    return encode_layer_prompts(pipeline.tokenizer, pipeline.text_encoder, prompts,
                                pipeline.tokens_per_prompt).cpu().to(STORE_DTYPE)
