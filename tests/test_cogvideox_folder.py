"""The full-size path: a local diffusers CogVideoX folder loads through the cogvideox-2b config.

The folder here is a tiny random CogVideoX in the stock layout (see conftest); the real
CogVideoX-2b loads through exactly the same code, with its own weights and shapes.
"""

import numpy as np
import torch

from layerflow_model import CogVideoXVAECodec, LayeredClip, LayerFlowTransformer, LayerPrompts, build_pipeline, get_config
from layerflow_model.conditioning import clip_to_video, decode_layers, encode_layers


def test_stock_folder_loads_through_the_cogvideox_2b_code_path(tiny_cogvideox_folder):
    pipe = build_pipeline(get_config("cogvideox-2b", pretrained_path=tiny_cogvideox_folder))
    assert isinstance(pipe.transformer, LayerFlowTransformer) and isinstance(pipe.vae, CogVideoXVAECodec)
    assert type(pipe.text_encoder).__name__ == "T5EncoderModel"
    # The stock weights arrive unchanged; three prompts of 226 tokens fit the sincos table.
    assert torch.count_nonzero(pipe.transformer.layer_embedding.weight) == 0
    assert pipe.transformer.config.max_text_seq_length == 3 * 226
    assert pipe.vae.spatial_compression == 8 and pipe.vae.latent_frames(16) == 4


def test_decomposition_returns_the_given_blend_unchanged_though_the_vae_is_lossy(tiny_cogvideox_folder):
    pipe = build_pipeline(get_config("cogvideox-2b", pretrained_path=tiny_cogvideox_folder))
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    blend = LayeredClip(blend=rng.random((8, 16, 16, 3), dtype=np.float32))
    out = pipe(
        LayerPrompts("a duck", "a pond", "a duck on a pond"),
        given=blend,
        task="decompose",
        num_frames=8,
        height=16,
        width=16,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert out.latents.shape == (1, 4 * 2, 4, 2, 2)  # 8 frames -> 2 latent frames per sub-clip
    with torch.no_grad():
        video = clip_to_video(blend)[None]  # (1, 4, 8, 3, 16, 16)
        round_trip = decode_layers(pipe.vae, encode_layers(pipe.vae, video))[0, 3]  # the blend sub-clip
    vae_blend = ((round_trip.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    assert np.abs(vae_blend - blend.blend).max() > 0.1  # the tiny VAE does not reproduce the blend...
    np.testing.assert_array_equal(out.clips[0].blend, blend.blend)  # ...but the caller's blend comes back
