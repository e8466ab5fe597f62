"""The layer-aware transformer is the stock CogVideoX DiT plus a zero-initialised layer embedding."""

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel

from layerflow_model import LayerFlowTransformer
from layerflow_model.transformer import given_layer_channels, input_channels, noise_code

STOCK_KWARGS = dict(
    num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=8, time_embed_dim=32,
    text_embed_dim=24, num_layers=2, sample_width=4, sample_height=4, sample_frames=9, max_text_seq_length=6,
)


@pytest.fixture()
def stock_model():
    torch.manual_seed(0)
    return CogVideoXTransformer3DModel(**STOCK_KWARGS).eval()


def inputs(frames=3, tokens=6, prompts=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(2, frames, 8, 4, 4, generator=g)  # (B, F, C, h, w)
    shape = (2, tokens, 24) if prompts is None else (2, prompts, tokens, 24)
    return video, torch.randn(*shape, generator=g), torch.tensor([100.0, 900.0])


def test_one_clip_one_prompt_gives_exactly_the_stock_output(stock_model, tmp_path):
    stock_model.save_pretrained(tmp_path / "transformer")
    # A stock checkpoint loads unchanged; the layer embedding is the only new weight and is zero.
    ours = LayerFlowTransformer.from_pretrained(
        tmp_path / "transformer", max_text_seq_length=18, low_cpu_mem_usage=False, use_safetensors=True
    ).eval()
    assert torch.count_nonzero(ours.layer_embedding.weight) == 0
    video, text, t = inputs()
    with torch.no_grad():
        expected = stock_model(video, text, t).sample
        got = ours(video, text[:, None], t).sample  # one prompt: (B, 1, L, D)
    assert torch.equal(got, expected)


def test_three_prompts_are_told_apart_by_the_layer_embedding(stock_model):
    ours = LayerFlowTransformer(**{**STOCK_KWARGS, "max_text_seq_length": 18}).eval()
    video, text, t = inputs(frames=4, prompts=3)
    with torch.no_grad():
        before = ours(video, text, t).sample
        ours.layer_embedding.weight[1] = 0.5  # only the second (background) prompt moves
        after = ours(video, text, t).sample
    assert before.shape == video.shape  # (B, 4 sub-clips x 1 frame, C, h, w)
    assert not torch.allclose(before, after)


def test_any_frame_count_and_text_length_runs():
    ours = LayerFlowTransformer(**STOCK_KWARGS).eval()
    for frames, tokens in [(4, 6), (16, 6), (8, 10)]:
        video, text, t = inputs(frames=frames, tokens=tokens, prompts=3)
        with torch.no_grad():
            assert ours(video, text, t).sample.shape == video.shape


def test_flat_text_is_rejected_with_the_expected_shape():
    ours = LayerFlowTransformer(**STOCK_KWARGS)
    video, text, t = inputs()
    with pytest.raises(ValueError, match=r"\(B, prompts, tokens, dim\)"):
        ours(video, text, t)
    with pytest.raises(ValueError, match="at most 3 prompts"):
        ours(video, torch.zeros(2, 4, 2, 24), t)


def test_given_sub_clips_can_also_enter_as_channels_at_their_own_time():
    # Two frames per sub-clip (F = 8), one channel; only the blend (frames 6, 7) is given.
    video = torch.arange(8.0).reshape(1, 8, 1, 1, 1)
    given = torch.tensor([[False] * 6 + [True] * 2])
    channels = given_layer_channels(video, given)  # (1, 8, 4 x (1 + 1), 1, 1)
    # Frame t of every sub-clip sees (fg, flag, alpha, flag, bg, flag, blend_t, 1).
    expected = torch.tensor([[0, 0, 0, 0, 0, 0, 6, 1], [0, 0, 0, 0, 0, 0, 7, 1]] * 4, dtype=torch.float32)
    assert torch.equal(channels[0, :, :, 0, 0], expected)

    ours = LayerFlowTransformer(**{**STOCK_KWARGS, "in_channels": input_channels(8, given_in_channels=True)}).eval()
    assert ours.takes_given_channels
    video, text, t = inputs(frames=8, prompts=3)
    with torch.no_grad():
        assert ours(video, text, t, given_frames=given.expand(2, -1)).sample.shape == video.shape
    with pytest.raises(ValueError, match="pass given_frames"):
        ours(video, text, t)


def test_pooled_prompts_enter_the_timestep_embedding_and_are_saved_with_the_model(tmp_path):
    torch.manual_seed(0)
    plain = LayerFlowTransformer(**{**STOCK_KWARGS, "max_text_seq_length": 18}).eval()
    torch.manual_seed(0)
    pooled = LayerFlowTransformer(**{**STOCK_KWARGS, "max_text_seq_length": 18}, pooled_prompts=True).eval()
    video, text, t = inputs(frames=4, prompts=3)
    with torch.no_grad():
        assert torch.equal(pooled(video, text, t).sample, plain(video, text, t).sample)  # zero-init: no change yet
        pooled.time_embedding.cond_proj.weight.normal_()
        before = pooled(video, text, t).sample
        shifted = text + torch.randn(2, 3, 1, 24)  # each prompt's mean token moves
        assert not torch.allclose(pooled(video, shifted, t).sample, before)
        assert pooled(video, text[:, :2], t).sample.shape == video.shape  # a missing prompt pools as zeros

    pooled.save_pretrained(tmp_path / "transformer")
    loaded = LayerFlowTransformer.from_pretrained(tmp_path / "transformer", use_safetensors=True).eval()
    assert loaded.config.pooled_prompts
    with torch.no_grad():
        assert torch.equal(loaded(video, text, t).sample, before)
    plain.save_pretrained(tmp_path / "plain")  # a model saved without them (e.g. the shipped one) loads without them
    assert not LayerFlowTransformer.from_pretrained(tmp_path / "plain", use_safetensors=True).config.pooled_prompts


def test_a_prompt_readout_adds_the_prompts_prior_to_the_layers_they_alone_decide(tmp_path):
    torch.manual_seed(0)
    plain = LayerFlowTransformer(**{**STOCK_KWARGS, "max_text_seq_length": 18}).eval()
    torch.manual_seed(0)
    readout = LayerFlowTransformer(**{**STOCK_KWARGS, "max_text_seq_length": 18}, prompt_readout_rank=4,
                                   readout_frames=2).eval()  # a prior laid out for 2 frames per sub-clip
    video, text, t = inputs(frames=8, prompts=3)  # frames 0-1 fg, 2-3 alpha, 4-5 bg, 6-7 blend
    generate = torch.zeros(2, 8, dtype=torch.bool)
    decompose, fill_background, fill_foreground = generate.clone(), generate.clone(), generate.clone()
    decompose[1, 6:] = True  # the second sample's blend is given
    fill_background[1, :4] = True  # the second sample's foreground and alpha are given: it fills the background
    fill_foreground[1, 4:6] = True  # the second sample's background is given: it fills the foreground
    with torch.no_grad():
        assert torch.equal(readout(video, text, t).sample, plain(video, text, t).sample)  # zero-init: no change yet
        readout.prompt_readout.up.weight.normal_()
        prior = readout(video, text, t, given_frames=decompose).sample - plain(video, text, t).sample
        assert prior[0].abs().min() > 0 and torch.count_nonzero(prior[1]) == 0  # decomposition reads the blend
        prior = readout(video, text, t, given_frames=fill_foreground).sample - plain(video, text, t).sample
        assert prior[1, :4].abs().min() > 0  # the foreground and alpha it makes, not the given background
        assert torch.count_nonzero(prior[1, 4:]) == 0  # nor the blend
        prior = readout(video, text, t, given_frames=fill_background).sample - plain(video, text, t).sample
        assert prior[0].abs().min() > 0 and torch.count_nonzero(prior[1]) == 0  # a made background: no prior
        moved = readout(video, text + torch.randn(2, 3, 1, 24), t, given_frames=generate).sample
        assert not torch.allclose(moved, readout(video, text, t, given_frames=generate).sample)
        longer, _, _ = inputs(frames=12, prompts=3)  # 3 frames per sub-clip: the prior is resized to them
        assert readout(longer, text, t).sample.shape == longer.shape
        readout.prompt_readout.standardise_with(torch.randn(10, 3, 24) + 5.0)  # training prompts' mean and spread
        before = readout(video, text, t).sample

    readout.save_pretrained(tmp_path / "transformer")
    loaded = LayerFlowTransformer.from_pretrained(tmp_path / "transformer", use_safetensors=True).eval()
    assert (loaded.config.prompt_readout_rank, loaded.config.readout_frames) == (4, 2)
    with torch.no_grad():
        assert torch.equal(loaded(video, text, t).sample, before)
    with pytest.raises(ValueError, match="readout_frames"):
        LayerFlowTransformer(**STOCK_KWARGS, prompt_readout_rank=4)


def test_the_noise_code_is_the_per_clip_noise_the_made_frames_start_from():
    code = torch.randn(2, 8)
    latents = code[:, None, :, None, None].expand(2, 4, 8, 4, 4).clone()  # per-clip noise at sigma 1
    given = torch.tensor([[False, False, True, True], [False, False, False, False]])
    latents[0, 2:] = torch.randn(2, 8, 4, 4)  # given frames hold clean layers, which do not count

    assert torch.allclose(noise_code(latents, given), code, atol=1e-6)
    assert torch.allclose(noise_code(latents[1:]), code[1:], atol=1e-6)  # nothing given


def test_the_noise_code_conditions_every_block_on_the_draw_and_is_saved_with_the_model(tmp_path):
    kwargs = {**STOCK_KWARGS, "max_text_seq_length": 18}
    torch.manual_seed(0)
    plain = LayerFlowTransformer(**kwargs).eval()
    torch.manual_seed(0)
    coded = LayerFlowTransformer(**kwargs, noise_code_conditioning=True).eval()
    video, text, t = inputs(frames=4, prompts=3)
    with torch.no_grad():
        assert torch.equal(coded(video, text, t).sample, plain(video, text, t).sample)  # zero-init: no change yet
        coded.time_embedding.cond_proj.weight.normal_()
        before = coded(video, text, t).sample
        assert not torch.allclose(coded(video + torch.randn(2, 1, 8, 1, 1), text, t).sample, before)

    coded.save_pretrained(tmp_path / "transformer")
    loaded = LayerFlowTransformer.from_pretrained(tmp_path / "transformer", use_safetensors=True).eval()
    with torch.no_grad():
        assert loaded.config.noise_code_conditioning and torch.equal(loaded(video, text, t).sample, before)


def test_a_model_given_the_noise_code_later_keeps_what_it_computed():
    torch.manual_seed(0)
    pooled = LayerFlowTransformer(**{**STOCK_KWARGS, "max_text_seq_length": 18}, pooled_prompts=True).eval()
    video, text, t = inputs(frames=4, prompts=3)
    with torch.no_grad():
        pooled.time_embedding.cond_proj.weight.normal_()  # a trained prompts' projection
        before = pooled(video, text, t).sample
        pooled.add_noise_code_conditioning()
        assert pooled.time_embedding.cond_proj.in_features == 3 * 24 + 8  # the pooled prompts, then the code
        assert torch.equal(pooled(video, text, t).sample, before)
