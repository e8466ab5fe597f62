"""The two LoRA adapters of the paper's training recipe, on diffusers' peft integration.

- ``motion``: rank 8 on attention q/k/v/out, trained on frozen (static) clips so that at scale 1
  it pulls the model toward static output. Its scale is set per batch.
- ``content``: high rank, trained on static layered images (motion at scale 1) and copy-pasted
  videos (motion at scale 0). At inference the motion adapter is removed, the content kept.

Adapters sit on a subset of blocks (every n-th, as the paper's every 6th). They are saved as
diffusers LoRA files (``pytorch_lora_weights.safetensors``, keys prefixed ``transformer.``)
that a stock ``CogVideoXTransformer3DModel`` loads with ``load_lora_adapter``.
"""

from __future__ import annotations

from pathlib import Path

from diffusers.loaders import CogVideoXLoraLoaderMixin
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

MOTION = "motion"
CONTENT = "content"
ADAPTER_NAMES = (MOTION, CONTENT)
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")


def adapter_target_modules(num_layers: int, every_n_blocks: int) -> list[str]:
    """Module names of attention q/k/v/out in blocks 0, n, 2n, ... of the transformer."""
    return [
        f"transformer_blocks.{block}.attn1.{proj}"
        for block in range(0, num_layers, every_n_blocks)
        for proj in ATTENTION_PROJECTIONS
    ]


def add_adapter(transformer, name: str, rank: int, every_n_blocks: int) -> None:
    """Attach a fresh LoRA adapter ``name`` (``motion`` or ``content``) with alpha = rank (scale 1)."""
    if name not in ADAPTER_NAMES:
        raise ValueError(f"adapter name must be one of {ADAPTER_NAMES}, got {name!r}")
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        init_lora_weights=True,  # B = 0: the adapter starts as the identity
        target_modules=adapter_target_modules(transformer.config.num_layers, every_n_blocks),
    )
    transformer.add_adapter(config, adapter_name=name)


def adapter_names(transformer) -> list[str]:
    """Names of the adapters attached to ``transformer`` (empty without peft layers)."""
    peft_config = getattr(transformer, "peft_config", None) or {}
    return list(peft_config)


def set_motion_scale(transformer, motion_scale: float) -> None:
    """Activate every attached adapter: ``motion`` at ``motion_scale``, others at 1."""
    names = adapter_names(transformer)
    if MOTION not in names:
        raise ValueError(f"no motion adapter attached (adapters: {names})")
    transformer.set_adapters(names, weights=[motion_scale if n == MOTION else 1.0 for n in names])


def save_adapter(transformer, name: str, folder: Path) -> Path:
    """Write adapter ``name`` as ``folder/pytorch_lora_weights.safetensors`` (diffusers LoRA format)."""
    if name not in adapter_names(transformer):
        raise ValueError(f"no adapter {name!r} attached (adapters: {adapter_names(transformer)})")
    layers = get_peft_model_state_dict(transformer, adapter_name=name)
    CogVideoXLoraLoaderMixin.save_lora_weights(
        save_directory=str(folder), transformer_lora_layers=layers, weight_name=LORA_WEIGHT_NAME
    )
    return Path(folder) / LORA_WEIGHT_NAME


def load_adapter(transformer, folder: Path, name: str) -> None:
    """Attach the adapter saved in ``folder`` under ``name``."""
    transformer.load_lora_adapter(
        str(folder), weight_name=LORA_WEIGHT_NAME, prefix="transformer", adapter_name=name, use_safetensors=True
    )


def export_for_inference(transformer) -> None:
    """Remove the motion adapter and keep the content adapter active at scale 1."""
    names = adapter_names(transformer)
    if MOTION in names:
        transformer.delete_adapters(MOTION)
    if CONTENT in adapter_names(transformer):
        transformer.set_adapters([CONTENT], weights=[1.0])
