"""Shared fixtures: the real LayerFlow sample data and a local Prefect server."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT.parent / "shared" / "data" / "layerflow_samples"


@pytest.fixture(scope="session")
def layerflow_samples() -> Path:
    """The official LayerFlow sample data (DAVIS, YouTube-VOS, balloon), read-only."""
    if not SAMPLES.is_dir():
        pytest.skip(f"LayerFlow sample data not found at {SAMPLES}")
    return SAMPLES


@pytest.fixture(scope="session")
def prefect_server():
    """A real, temporary local Prefect server (sqlite) for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_cogvideox_folder(tmp_path_factory) -> Path:
    """A tiny random CogVideoX saved in the stock diffusers folder layout.

    ``transformer/`` (stock CogVideoXTransformer3DModel, sincos 2B layout), ``vae/``
    (AutoencoderKLCogVideoX, 8x spatial, 4x temporal), ``text_encoder/`` (T5EncoderModel),
    ``tokenizer/`` and ``scheduler/`` — what a user's local CogVideoX-2b folder holds, at toy size.
    """
    import torch
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXTransformer3DModel
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    from layerflow_model.text_encoders import minilm_folder

    folder = tmp_path_factory.mktemp("CogVideoX-tiny")
    torch.manual_seed(0)
    CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=32,
        text_embed_dim=32, num_layers=2, sample_width=2, sample_height=2, sample_frames=9, max_text_seq_length=8,
    ).save_pretrained(folder / "transformer")
    AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2,
        down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
    ).save_pretrained(folder / "vae")
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
    tokenizer.save_pretrained(folder / "tokenizer")
    T5EncoderModel(
        T5Config(vocab_size=tokenizer.vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2)
    ).save_pretrained(folder / "text_encoder")
    CogVideoXDDIMScheduler().save_pretrained(folder / "scheduler")
    return folder
