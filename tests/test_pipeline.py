"""LayerFlowPipeline: every task from one tiny model, in diffusers conventions."""

import numpy as np
import pytest
import torch

from layerflow_model import LayeredClip, LayerFlowPipeline, LayerPrompts, build_pipeline, get_config
from layerflow_model.clip import average_clips, flip_clip
from layerflow_model.compositing import refine_by_compositing
from layerflow_model.config import with_overrides
from layerflow_model.objective import SIGMA_DATA

PROMPTS = LayerPrompts(fg="a red circle moving left", bg="blue stripes", blend="a red circle over blue stripes")


def tiny_pipeline(overrides=None):
    """A freshly initialised ``tiny`` pipeline, its config changed by dotted ``overrides``, progress bar off."""
    pipe = build_pipeline(with_overrides(get_config("tiny"), overrides or {}))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


def ground_truth(seed=0):
    """A 4-frame 16x16 layered clip with a binary alpha (so the straight fg is recoverable)."""
    rng = np.random.default_rng(seed)
    alpha = np.zeros((4, 16, 16), np.float32)
    alpha[:, 4:12, 3:9] = 1.0
    fg = rng.random((4, 16, 16, 3), dtype=np.float32)
    bg = rng.random((4, 16, 16, 3), dtype=np.float32)
    return LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()


def run(pipe, **kwargs):
    return pipe(PROMPTS, num_inference_steps=2, generator=torch.Generator().manual_seed(0), **kwargs)


def test_generate_makes_all_four_layers(pipe):
    out = run(pipe)
    clip = out.clips[0]
    assert clip.present_layers() == ("fg", "alpha", "bg", "blend")
    assert clip.fg.shape == (4, 16, 16, 3) and clip.alpha.shape == (4, 16, 16)
    assert 0 <= clip.alpha.min() and clip.alpha.max() <= 1
    assert out.latents.shape == (1, 16, 48, 4, 4)  # (B, 4 sub-clips x 4 frames, 3*4*4, 16/4, 16/4)


@pytest.mark.parametrize(
    "task, given",
    [("decompose", ("blend",)), ("fill_background", ("fg", "alpha")), ("fill_foreground", ("bg",))],
)
def test_given_layers_come_back_as_given(pipe, task, given):
    truth = ground_truth()
    clip = run(pipe, given=truth, task=task).clips[0]
    # Bit-exact, off the 8-bit grid too: the caller's layers are returned, not their codec round trip.
    for name in given:
        np.testing.assert_array_equal(getattr(clip, name), getattr(truth, name))


def test_any_subset_of_layers_can_be_given(pipe):
    truth = ground_truth()
    clip = run(pipe, given=truth.subset("alpha", "blend")).clips[0]
    np.testing.assert_array_equal(clip.alpha, truth.alpha)
    np.testing.assert_array_equal(clip.blend, truth.blend)


def test_same_seed_same_output_and_embeddings_equal_prompts(pipe):
    first, second = run(pipe).latents, run(pipe).latents
    assert torch.equal(first, second)
    embeds = pipe.encode_prompt([PROMPTS])  # (1, 3, 8, 32)
    assert embeds.shape == (1, 3, 8, 32)
    from_embeds = pipe(
        prompt_embeds=embeds, num_inference_steps=2, generator=torch.Generator().manual_seed(0)
    ).latents
    assert torch.equal(from_embeds, first)


def test_guidance_changes_the_result(pipe):
    assert not torch.equal(run(pipe, guidance_scale=1.0).latents, run(pipe, guidance_scale=6.0).latents)


def test_save_and_load_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = LayerFlowPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.num_frames == 4 and loaded.config.prediction == pipe.config.prediction
    assert torch.equal(run(loaded).latents, run(pipe).latents)


def record_outputs(pipe) -> list[torch.Tensor]:
    """Every transformer output (B, F, C, h, w) of the pipeline's next calls, in order."""
    outputs = []
    pipe.transformer.register_forward_hook(lambda module, args, out: outputs.append(out.sample))
    return outputs


def test_each_task_kind_samples_with_its_own_steps_and_guidance(tmp_path):
    # tiny's sampler.num_inference_steps = 2, guidance_scale = 6; fill_* stay None
    pipe = tiny_pipeline({"sampler.decompose_steps": 1, "sampler.generate_steps": 3,
                          "sampler.decompose_guidance": 1.0, "sampler.generate_guidance": 3.0})
    calls = record_outputs(pipe)
    truth = ground_truth()
    for kwargs, steps, guidance in [(dict(given=truth, task="decompose"), 1, 1.0), (dict(), 3, 3.0),
                                    (dict(given=truth, task="fill_background"), 2, 6.0),
                                    (dict(num_inference_steps=4, guidance_scale=2.0), 4, 2.0)]:
        calls.clear()
        out = pipe(PROMPTS, **kwargs)
        assert len(calls) == out.num_inference_steps == steps, kwargs
        assert out.guidance_scale == guidance, kwargs
        assert calls[0].shape[0] == (1 if guidance == 1.0 else 2)  # guidance runs the empty prompts alongside
    pipe.save_pretrained(tmp_path / "model")
    loaded = LayerFlowPipeline.from_pretrained(tmp_path / "model")
    assert (loaded.config.decompose_steps, loaded.config.fill_steps, loaded.config.generate_steps) == (1, None, 3)
    assert (loaded.config.decompose_guidance, loaded.config.fill_guidance, loaded.config.generate_guidance) == (1.0, None, 3.0)


def test_flip_averaged_decomposition_is_the_mean_of_four_mirrored_passes(tmp_path):
    pipe = tiny_pipeline({"sampler.decompose_flip_average": True})
    truth = ground_truth()

    averaged = pipe(PROMPTS, given=truth, task="decompose", generator=torch.Generator().manual_seed(0))

    generator = torch.Generator().manual_seed(0)  # the passes draw their noise in turn, as is first
    passes = [pipe(PROMPTS, given=flip_clip(truth.subset("blend"), axes), task="decompose", generator=generator,
                   flip_average=False) for axes in [(), (2,), (1,), (1, 2)]]
    expected = average_clips([flip_clip(out.clips[0], axes) for out, axes in zip(passes, [(), (2,), (1,), (1, 2)])])
    assert averaged.flip_average and not passes[0].flip_average
    for name in ("fg", "alpha", "bg"):
        np.testing.assert_allclose(getattr(averaged.clips[0], name), getattr(expected, name), atol=1e-6)
    np.testing.assert_array_equal(averaged.clips[0].blend, truth.blend)  # the given blend, as given
    torch.testing.assert_close(averaged.latents, passes[0].latents)  # the unmirrored pass's
    assert not pipe(PROMPTS, given=truth, task="fill_background").flip_average  # a decomposition setting only
    pipe.save_pretrained(tmp_path / "model")
    assert LayerFlowPipeline.from_pretrained(tmp_path / "model").config.decompose_flip_average


def test_refined_decomposition_solves_alpha_and_fg_from_the_given_blend(tmp_path):
    pipe = tiny_pipeline({"sampler.decompose_refine_alpha": True})
    truth = ground_truth()

    refined = pipe(PROMPTS, given=truth, task="decompose", generator=torch.Generator().manual_seed(0))

    plain = pipe(PROMPTS, given=truth, task="decompose", generator=torch.Generator().manual_seed(0), refine_alpha=False)
    expected = refine_by_compositing(plain.clips[0])
    assert refined.refine_alpha and not plain.refine_alpha
    for name in ("fg", "alpha", "bg"):
        np.testing.assert_array_equal(getattr(refined.clips[0], name), getattr(expected, name))
    np.testing.assert_array_equal(refined.clips[0].blend, truth.blend)
    assert not pipe(PROMPTS, given=truth, task="fill_background").refine_alpha  # a decomposition setting only
    with pytest.raises(ValueError, match="needs the blend given"):
        pipe(PROMPTS, given=truth, task="fill_background", refine_alpha=True)
    pipe.save_pretrained(tmp_path / "model")
    assert LayerFlowPipeline.from_pretrained(tmp_path / "model").config.decompose_refine_alpha


@pytest.mark.parametrize(("prediction", "output_scale"), [("sample", 1.0), ("preconditioned_sample", SIGMA_DATA)])
def test_one_step_from_pure_noise_returns_the_networks_clean_layers(prediction, output_scale):
    # With a clean-layer prediction, one Euler step from sigma 1 to 0 is x1 - (x1 - x0_pred) = x0_pred; preconditioned,
    # x0_pred at sigma 1 is the network's output times SIGMA_DATA (no skip from pure noise).
    pipe = tiny_pipeline({"objective.prediction": prediction})
    outputs = record_outputs(pipe)
    out = pipe(PROMPTS, given=ground_truth(), task="decompose", num_inference_steps=1, guidance_scale=1.0,
               generator=torch.Generator().manual_seed(0), output_type="latent")
    (network_output,) = outputs  # (1, 16, C, h, w)
    torch.testing.assert_close(out.latents[:, :12], output_scale * network_output[:, :12], atol=1e-5, rtol=0)  # fg, alpha, bg


def test_a_one_step_sampler_on_per_clip_noise_starts_every_frame_and_position_from_one_draw(tmp_path):
    tiny_pipeline({"objective.prediction": "sample", "objective.one_step_fraction": 1.0,
                   "objective.noise": "per_clip"}).save_pretrained(tmp_path / "model")
    pipe = LayerFlowPipeline.from_pretrained(tmp_path / "model")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.config.noise == "per_clip"
    inputs = []
    pipe.transformer.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    pipe(PROMPTS, num_inference_steps=1, guidance_scale=1.0, generator=torch.Generator().manual_seed(0))
    (noise,) = inputs  # (1, 16, C, h, w): all four layers generated
    assert torch.equal(noise, noise[:, :1, :, :1, :1].expand_as(noise))


def test_given_starting_noise_replaces_the_draw_and_a_noise_encoder_saves_with_the_model(tmp_path):
    tiny_pipeline({"objective.prediction": "sample", "objective.one_step_fraction": 1.0, "objective.noise": "per_clip",
                   "objective.loss": "encoded_noise"}).save_pretrained(tmp_path / "model")
    pipe = LayerFlowPipeline.from_pretrained(tmp_path / "model")  # the encoder comes back with the model
    pipe.set_progress_bar_config(disable=True)
    assert pipe.transformer.noise_encoder is not None and pipe.transformer.config.noise_encoder_frames == 16
    inputs = []
    pipe.transformer.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    noise = torch.randn(1, 1, 48, 1, 1).expand(1, 16, 48, 4, 4)  # e.g. a clip's code from the noise encoder
    given_noise = pipe(PROMPTS, num_inference_steps=1, guidance_scale=1.0, latents=noise).latents
    drawn = pipe(PROMPTS, num_inference_steps=1, guidance_scale=1.0, generator=torch.Generator().manual_seed(0)).latents
    assert torch.equal(inputs[0], noise) and not torch.equal(given_noise, drawn)
    with pytest.raises(ValueError, match=r"`latents` must be of shape \(1, 16, 48, 4, 4\)"):
        pipe(PROMPTS, num_inference_steps=1, latents=torch.zeros(1, 8, 48, 4, 4))


def test_bad_inputs_name_what_is_wrong(pipe):
    truth = ground_truth()
    with pytest.raises(ValueError, match="exactly one of `prompt` and `prompt_embeds`"):
        pipe(num_inference_steps=1)
    with pytest.raises(ValueError, match="LayerPrompts"):
        pipe(["a red circle"], num_inference_steps=1)
    with pytest.raises(ValueError, match="`given` has 1 clips but there are 2 prompts"):
        pipe([PROMPTS, PROMPTS], given=[truth], num_inference_steps=1)
    with pytest.raises(ValueError, match=r"missing \['blend'\]"):
        pipe(PROMPTS, given=truth.subset("fg", "alpha"), task="decompose", num_inference_steps=1)
    with pytest.raises(ValueError, match="expected 4 frames of 16x16"):
        pipe(PROMPTS, given=LayeredClip(blend=np.zeros((3, 16, 16, 3), np.float32)), num_inference_steps=1)
    with pytest.raises(ValueError, match=r"`prompt_embeds` must be \(B, 3, tokens, dim\)"):
        pipe(prompt_embeds=torch.zeros(1, 8, 32), num_inference_steps=1)
    with pytest.raises(ValueError, match="multiples of 8"):
        pipe(PROMPTS, height=20, num_inference_steps=1)


def test_a_model_that_takes_the_given_layers_as_channels_runs_every_task(tmp_path):
    pipe = tiny_pipeline({"transformer.given_in_channels": True})
    truth = ground_truth()
    for kwargs in [dict(given=truth, task="decompose"), dict(given=truth, task="fill_foreground"), dict()]:
        assert run(pipe, **kwargs).clips[0].present_layers() == ("fg", "alpha", "bg", "blend")
    pipe.save_pretrained(tmp_path / "model")
    loaded = LayerFlowPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.transformer.takes_given_channels
    assert torch.equal(run(loaded, given=truth, task="decompose").latents, run(pipe, given=truth, task="decompose").latents)
