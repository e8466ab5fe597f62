"""The flow-matching objective: given sub-clips stay clean and are masked out of the loss."""

import pytest
import torch
from pydantic import ValidationError

from layerflow_model import build_pipeline, get_config
from layerflow_model.config import ObjectiveConfig
from layerflow_model.conditioning import frame_mask, given_mask
from layerflow_model.noise_encoder import kl_to_standard_normal
from layerflow_model.objective import (
    SIGMA_DATA,
    TrainingTerms,
    draw_noise,
    energy_score,
    frame_loss_weights,
    masked_mse,
    nearest_noise,
    noisy_latents,
    objective_loss,
    preconditioning,
    sample_from_output,
    sample_kinds,
    sample_sigmas,
    shift_sigmas,
    training_terms,
    velocity_from_output,
)


def test_sigmas_are_logit_normal_and_shift_toward_noise():
    g = torch.Generator().manual_seed(0)
    sigmas = sample_sigmas(4096, ObjectiveConfig(), generator=g)
    assert 0 < sigmas.min() and sigmas.max() < 1
    assert abs(sigmas.median().item() - 0.5) < 0.03  # logit-normal(0, 1) is centred at 1/2
    shifted = sample_sigmas(4096, ObjectiveConfig(shift=4.0), generator=torch.Generator().manual_seed(0))
    assert shifted.median() > 0.75
    assert shift_sigmas(torch.tensor([0.0, 1.0]), 3.0).tolist() == [0.0, 1.0]


def test_one_step_fraction_trains_that_share_of_samples_from_pure_noise():
    sigmas = sample_sigmas(4096, ObjectiveConfig(one_step_fraction=0.5), generator=torch.Generator().manual_seed(0))
    one_step = sigmas == 1.0
    assert abs(one_step.float().mean().item() - 0.5) < 0.03
    assert 0 < sigmas[~one_step].min() and sigmas[~one_step].max() < 1  # the rest: the flow-matching sigmas
    # At sigma = 1 a sample prediction's loss is the clean layers' squared error: a one-step regressor.
    x0, eps, x0_pred = torch.randn(3, 1, 4, 3, 2, 2)
    noisy = noisy_latents(x0, eps, torch.ones(1), torch.zeros(1, 4, dtype=torch.bool))
    torch.testing.assert_close(velocity_from_output(x0_pred, noisy, torch.ones(1), "sample") - (eps - x0), x0 - x0_pred)


def test_each_kind_of_task_can_have_its_own_one_step_fraction():
    # A regressor for decomposition and filling, a flow model for generation.
    split = ObjectiveConfig(prediction="sample", one_step_fraction=1.0, generate_one_step_fraction=0.0)
    assert [split.one_step_fraction_for(kind) for kind in ("decompose", "fill", "generate")] == [1.0, 1.0, 0.0]
    given = frame_mask(torch.stack([given_mask(names) for names in [("blend",), ("bg",), ()] * 1000]), 2)  # (3000, 8)
    kinds = sample_kinds(given)
    assert kinds[:3] == ["decompose", "fill", "generate"]
    sigmas = sample_sigmas(3000, split, generator=torch.Generator().manual_seed(0), kinds=kinds)
    assert (sigmas[0::3] == 1).all() and (sigmas[1::3] == 1).all()
    assert sigmas[2::3].max() < 1 and abs(sigmas[2::3].median().item() - 0.5) < 0.05  # logit-normal


def test_one_step_fraction_needs_a_prediction_that_holds_the_clean_layers():
    with pytest.raises(ValidationError, match="one_step_fraction: a noise prediction"):
        ObjectiveConfig(prediction="noise", one_step_fraction=0.5)
    with pytest.raises(ValidationError, match="fill_one_step_fraction: a noise prediction.*preconditioned_sample"):
        ObjectiveConfig(prediction="noise", fill_one_step_fraction=0.5)  # the error names every prediction that works
    with pytest.raises(ValidationError, match="one_step_fraction"):
        ObjectiveConfig(one_step_fraction=1.5)


@pytest.mark.parametrize("prediction", ["sample", "preconditioned_sample"])
def test_a_loss_on_the_clean_layers_is_the_velocity_loss_times_sigma_squared(prediction):
    pipe = build_pipeline(get_config("tiny"))
    latents, embeds = torch.randn(1, 16, 48, 4, 4), torch.randn(1, 3, 8, 32)
    given = frame_mask(given_mask(())[None], 4)  # generate: every sub-clip generated
    for one_step_fraction in (0.0, 1.0):  # a flow-matching sigma, then sigma = 1
        configs = {space: ObjectiveConfig(prediction=prediction, one_step_fraction=one_step_fraction, loss_space=space)
                   for space in ("velocity", "sample")}
        sigma = sample_sigmas(1, configs["velocity"], generator=torch.Generator().manual_seed(0)).item()
        loss = {space: masked_mse(training_terms(pipe.transformer, latents, embeds, given, config,
                                                 torch.Generator().manual_seed(0))) for space, config in configs.items()}
        torch.testing.assert_close(loss["sample"], loss["velocity"] * sigma**2)
    with pytest.raises(ValidationError, match="loss_space"):
        ObjectiveConfig(prediction="velocity", loss_space="sample")


def test_given_frames_stay_clean_at_any_noise_level():
    latents, noise = torch.randn(2, 8, 3, 2, 2), torch.randn(2, 8, 3, 2, 2)
    given = frame_mask(torch.stack([given_mask(("blend",)), given_mask(())]), 2)  # (B, F)
    noisy = noisy_latents(latents, noise, torch.tensor([1.0, 1.0]), given)
    assert torch.equal(noisy[0, 6:], latents[0, 6:])  # blend given: clean
    assert torch.equal(noisy[0, :6], noise[0, :6]) and torch.equal(noisy[1], noise[1])


@pytest.mark.parametrize("prediction", ["velocity", "sample", "preconditioned_sample", "noise"])
def test_every_prediction_type_converts_to_the_true_velocity(prediction):
    x0, eps, sigma = torch.randn(2, 4, 3, 2, 2), torch.randn(2, 4, 3, 2, 2), torch.tensor([0.3, 0.7])
    noisy = noisy_latents(x0, eps, sigma, torch.zeros(2, 4, dtype=torch.bool))
    c_skip, c_out = (c.reshape(2, 1, 1, 1, 1) for c in preconditioning(sigma))
    exact = {"velocity": eps - x0, "sample": x0, "preconditioned_sample": (x0 - c_skip * noisy) / c_out,
             "noise": eps}[prediction]
    torch.testing.assert_close(velocity_from_output(exact, noisy, sigma, prediction), eps - x0)
    torch.testing.assert_close(sample_from_output(exact, noisy, sigma, prediction), x0)


def test_a_preconditioned_prediction_copies_a_clean_input_and_regresses_from_pure_noise():
    c_skip, c_out = preconditioning(torch.tensor([0.0, 1.0]))
    assert c_skip.tolist() == [1.0, 0.0] and c_out.tolist() == [0.0, SIGMA_DATA]
    # at every sigma the skip is the best linear guess of x0 from x_sigma, the output's scale what it leaves
    x0, eps = SIGMA_DATA * torch.randn(200_000), torch.randn(200_000)
    for sigma in (0.1, 0.5, 0.9):
        noisy = (1 - sigma) * x0 + sigma * eps
        c_skip, c_out = preconditioning(torch.tensor(sigma))
        residual = (x0 - c_skip * noisy) / c_out  # what the network is asked for
        assert abs(residual.std().item() - 1.0) < 0.01 and abs(torch.dot(residual, noisy).item()) / 200_000 < 0.01


def test_training_terms_mask_given_clips_out_of_the_loss():
    pipe = build_pipeline(get_config("tiny"))
    latents = torch.randn(2, 16, 48, 4, 4)  # (B, 4 sub-clips x 4 frames, C, h, w)
    embeds = torch.randn(2, 3, 8, 32)
    given = frame_mask(torch.stack([given_mask(("blend",)), given_mask(("fg", "alpha"))]), 4)
    terms = training_terms(pipe.transformer, latents, embeds, given, ObjectiveConfig(), torch.Generator().manual_seed(0))
    assert terms.pred.shape == terms.target.shape == latents.shape
    assert terms.loss_mask[:, :, 0, 0, 0].tolist() == [[1.0] * 12 + [0.0] * 4, [0.0] * 8 + [1.0] * 8]
    loss = masked_mse(terms)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    # Changing only a given clip's target (sample 0's blend) leaves the loss unchanged.
    target = terms.target.clone()
    target[0, 12:] = 9.0
    assert masked_mse(terms._replace(target=target)).item() == loss.item()


def test_layer_loss_weights_weigh_each_generated_sub_clip():
    pipe = build_pipeline(get_config("tiny"))
    latents, embeds = torch.randn(1, 16, 48, 4, 4), torch.randn(1, 3, 8, 32)
    given = frame_mask(given_mask(("blend",))[None], 4)  # decompose: fg, alpha, bg generated
    alpha_only = ObjectiveConfig(layer_loss_weights={"fg": 0, "alpha": 4, "bg": 0})
    terms = training_terms(pipe.transformer, latents, embeds, given, alpha_only, torch.Generator().manual_seed(0))
    assert terms.loss_mask[0, :, 0, 0, 0].tolist() == [0.0] * 4 + [4.0] * 4 + [0.0] * 8
    alpha_mse = ((terms.pred - terms.target)[:, 4:8] ** 2).mean()
    torch.testing.assert_close(masked_mse(terms), alpha_mse)  # a weighted mean: only alpha counts
    with pytest.raises(ValidationError, match="alpha"):
        ObjectiveConfig(layer_loss_weights={"alpha": -1})


def test_the_energy_score_prefers_draws_of_the_answers_where_squared_error_prefers_their_mean():
    # Each prompt allows two answers, -1 and +1 everywhere, equally often.
    answers = torch.where(torch.rand(4096, generator=torch.Generator().manual_seed(0)) < 0.5, -1.0, 1.0)
    truth = answers[:, None, None, None, None].expand(-1, 4, 1, 2, 2)  # (B, F, C, h, w)

    def draws_of(layers: torch.Tensor) -> TrainingTerms:  # two draws per sample, draw-major
        return TrainingTerms(pred=layers, target=truth.repeat(2, 1, 1, 1, 1),
                             loss_mask=torch.ones(2 * 4096, 4, 1, 1, 1))

    means = draws_of(torch.zeros(2 * 4096, 4, 1, 2, 2))
    drawn = torch.where(torch.rand(2 * 4096, generator=torch.Generator().manual_seed(1)) < 0.5, -1.0, 1.0)
    answer_draws = draws_of(drawn[:, None, None, None, None].expand(-1, 4, 1, 2, 2))
    assert energy_score(answer_draws) < 0.55 < 0.99 < energy_score(means)  # about 0.5 against exactly 1
    assert masked_mse(means) < 1.01 < 1.9 < masked_mse(answer_draws)  # 1 against about 2


def test_under_the_energy_score_each_sample_is_drawn_twice_from_its_own_noise():
    pipe = build_pipeline(get_config("tiny"))
    latents, embeds = torch.randn(2, 16, 48, 4, 4), torch.randn(2, 3, 8, 32)
    given = frame_mask(torch.stack([given_mask(()), given_mask(("blend",))]), 4)
    energy = ObjectiveConfig(prediction="sample", one_step_fraction=1.0, loss_space="sample", loss="energy_score")
    terms = training_terms(pipe.transformer, latents, embeds, given, energy, torch.Generator().manual_seed(0))
    assert terms.pred.shape == (4, 16, 48, 4, 4)  # (draws x B, ...): the first draws of both samples, then the second
    torch.testing.assert_close(terms.target, latents.repeat(2, 1, 1, 1, 1))
    assert not torch.equal(terms.pred[:2], terms.pred[2:])  # another noise, another draw
    loss = energy_score(terms)
    loss.backward()
    assert torch.isfinite(loss)
    with pytest.raises(ValidationError, match="loss: the energy score compares clean layers"):
        ObjectiveConfig(prediction="sample", loss="energy_score")


def test_under_the_nearest_draw_each_sample_trains_on_the_candidate_drawn_nearest_its_layers():
    pipe = build_pipeline(get_config("tiny"))
    latents, embeds = torch.randn(2, 16, 48, 4, 4), torch.randn(2, 3, 8, 32)
    given = frame_mask(torch.stack([given_mask(()), given_mask(("bg",))]), 4)  # generate; fill the foreground
    nearest = ObjectiveConfig(prediction="sample", one_step_fraction=1.0, loss_space="sample", noise="per_clip",
                              loss="nearest_draw", nearest_draw_candidates=4)

    chosen = nearest_noise(pipe.transformer, latents, embeds, given, torch.ones(2), nearest,
                           torch.Generator().manual_seed(0))

    candidates = draw_noise((4 * 2, 16, 48, 4, 4), "per_clip", torch.Generator().manual_seed(0))
    candidates = candidates.view(4, 2, 16, 48, 4, 4)  # candidate-major
    with torch.no_grad():  # at sigma 1 the generated frames are the noise and the output is the draw
        draws = [pipe.transformer(noisy_latents(latents, noise, torch.ones(2), given), embeds,
                                  timestep=torch.full((2,), 1000.0), given_frames=given).sample for noise in candidates]
    errors = torch.stack([(((drawn - latents) ** 2).mean(dim=(2, 3, 4)) * frame_loss_weights(given, nearest)).sum(1)
                          for drawn in draws])  # (4 candidates, 2 samples)
    for sample, best in enumerate(errors.argmin(dim=0).tolist()):
        torch.testing.assert_close(chosen[sample], candidates[best, sample])
    terms = training_terms(pipe.transformer, latents, embeds, given, nearest, torch.Generator().manual_seed(0))
    assert terms.pred.shape == (2, 16, 48, 4, 4)  # one draw per sample trains: the nearest
    masked_mse(terms).backward()


def test_under_the_encoded_noise_each_sample_draws_its_noise_from_its_own_layers():
    encoded = ObjectiveConfig(prediction="sample", one_step_fraction=1.0, loss_space="sample", noise="per_clip",
                              loss="encoded_noise", encoded_noise_kl_weight=0.01)
    pipe = build_pipeline(get_config("tiny").model_copy(update={"objective": encoded}))
    encoder = pipe.transformer.noise_encoder  # built because the objective needs it; training alone uses it
    latents, embeds = torch.randn(2, 16, 48, 4, 4), torch.randn(2, 3, 8, 32)
    given = frame_mask(torch.stack([given_mask(()), given_mask(())]), 4)  # generate

    mean, log_var = encoder(latents)  # (2, 48) each: a new encoder gives the standard normal, KL 0
    assert mean.shape == log_var.shape == (2, 48) and not mean.any() and not log_var.any()
    terms = training_terms(pipe.transformer, latents, embeds, given, encoded, torch.Generator().manual_seed(0))
    assert torch.equal(terms.noise_kl, torch.zeros(2))
    torch.nn.init.normal_(encoder.out.weight, std=0.01)  # as after some training: each clip its own noise
    terms = training_terms(pipe.transformer, latents, embeds, given, encoded, torch.Generator().manual_seed(0))
    mean, log_var = encoder(latents)
    torch.testing.assert_close(terms.noise_kl, kl_to_standard_normal(mean, log_var))
    assert (terms.noise_kl > 0).all() and not torch.equal(mean[0], mean[1])
    loss = objective_loss(terms, encoded)
    torch.testing.assert_close(loss, masked_mse(terms) + 0.01 * terms.noise_kl.mean())
    loss.backward()  # the encoder trains through the draw (reparametrised) and the KL
    assert encoder.hidden.weight.grad.abs().sum() > 0 and encoder.out.weight.grad.abs().sum() > 0
    with pytest.raises(ValidationError, match="loss: encoded noise is one draw per clip"):
        ObjectiveConfig(prediction="sample", one_step_fraction=1.0, loss="encoded_noise")


def test_per_clip_noise_is_one_draw_per_channel_shared_by_every_frame_and_position():
    noise = draw_noise((3, 16, 48, 4, 4), "per_clip", torch.Generator().manual_seed(0))
    assert noise.shape == (3, 16, 48, 4, 4)
    assert torch.equal(noise, noise[:, :1, :, :1, :1].expand_as(noise))
    assert not torch.equal(noise[0], noise[1]) and not torch.equal(noise[:, :, 0], noise[:, :, 1])
    per_pixel = draw_noise((3, 16, 48, 4, 4), "per_pixel")
    assert not torch.equal(per_pixel[..., 0, 0], per_pixel[..., 0, 1])
    assert not torch.equal(per_pixel[:, 0], per_pixel[:, 1])
    # A flow model's noisy inputs mix noise into every pixel; per-clip noise is a one-step sampler's.
    with pytest.raises(ValidationError, match="noise: per-clip noise is a one-step sampler's"):
        ObjectiveConfig(prediction="sample", one_step_fraction=1.0, generate_one_step_fraction=0.0, noise="per_clip")
