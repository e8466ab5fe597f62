"""Motion and content LoRA adapters: attach, scale per batch, save as diffusers LoRA files, export."""

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel

from layerflow_model import build_pipeline, get_config
from layerflow_model import lora
from layerflow_model.config import with_overrides


@pytest.fixture()
def transformer():
    torch.manual_seed(0)
    config = get_config("small", text_encoder={"kind": "random_bert", "tokens_per_prompt": 4})
    paper_layout = with_overrides(config, {"transformer.given_in_channels": False})  # comparable to a stock DiT
    transformer = build_pipeline(paper_layout).transformer
    lora.add_adapter(transformer, lora.MOTION, rank=2, every_n_blocks=3)
    lora.add_adapter(transformer, lora.CONTENT, rank=4, every_n_blocks=3)
    with torch.no_grad():  # trained adapters are not the identity
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)
    return transformer.eval()


def forward(transformer, seed=0):
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(1, 8, 48, 8, 8, generator=g)  # 4 sub-clips x 2 frames
    text = torch.randn(1, 3, 4, 32, generator=g)
    with torch.no_grad():
        return transformer(video, text, torch.tensor([500.0])).sample


def test_adapters_sit_on_every_nth_block_attention():
    assert lora.adapter_target_modules(num_layers=6, every_n_blocks=3) == [
        f"transformer_blocks.{b}.attn1.{p}" for b in (0, 3) for p in ("to_q", "to_k", "to_v", "to_out.0")
    ]


def test_motion_scale_is_set_per_batch(transformer):
    lora.set_motion_scale(transformer, 1.0)
    with_motion = forward(transformer)
    lora.set_motion_scale(transformer, 0.0)
    without_motion = forward(transformer)
    assert not torch.allclose(with_motion, without_motion)


def test_content_adapter_loads_into_a_stock_diffusers_transformer(transformer, tmp_path):
    path = lora.save_adapter(transformer, lora.CONTENT, tmp_path)
    assert path.name == "pytorch_lora_weights.safetensors"
    stock = CogVideoXTransformer3DModel.from_config(transformer.config).eval()
    base = {k.replace(".base_layer", ""): v for k, v in transformer.state_dict().items() if "lora_" not in k}
    base.pop("layer_embedding.weight")
    base.pop("time_embedding.cond_proj.weight")  # the pooled prompts' projection (small has them)
    stock.load_state_dict({k: v for k, v in base.items() if not k.startswith("prompt_readout.")})  # small has one
    stock.load_lora_adapter(str(tmp_path), weight_name=path.name, prefix="transformer", adapter_name="content")
    # The stock model with the content adapter computes what ours does with motion removed
    # (the layer embedding, the pooled prompts' projection and the prompt readout's output are
    # still zero here, so one flattened prompt sequence is equivalent).
    lora.export_for_inference(transformer)
    assert lora.adapter_names(transformer) == ["content"]
    g = torch.Generator().manual_seed(0)
    video, text = torch.randn(1, 8, 48, 8, 8, generator=g), torch.randn(1, 3, 4, 32, generator=g)
    with torch.no_grad():
        ours = transformer(video, text, torch.tensor([500.0])).sample
        theirs = stock(video, text.flatten(1, 2), torch.tensor([500.0])).sample
    torch.testing.assert_close(ours, theirs)


def test_unknown_adapter_names_are_rejected(transformer):
    with pytest.raises(ValueError, match="adapter name must be one of"):
        lora.add_adapter(transformer, "style", rank=2, every_n_blocks=3)
    lora.export_for_inference(transformer)
    with pytest.raises(ValueError, match="no motion adapter attached"):
        lora.set_motion_scale(transformer, 1.0)
