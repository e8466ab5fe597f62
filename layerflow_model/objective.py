"""Flow-matching training objective with given (clean) sub-clips.

Convention (rectified flow, as diffusers' ``FlowMatchEulerDiscreteScheduler``):
``x_sigma = (1 - sigma) * x0 + sigma * noise`` with sigma in [0, 1] (1 = pure noise), and
velocity ``v = noise - x0``. The transformer sees ``timestep = 1000 * sigma``. Given sub-clips
enter clean at every sigma, share the sample's timestep and are masked out of the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from .conditioning import LAYER_ORDER, given_sub_clips, task_kind
from .config import CLEAN_LAYER_PREDICTIONS, ObjectiveConfig, TaskKind
from .noise_encoder import draw_encoded, kl_to_standard_normal

MIN_DENOMINATOR = 0.05  # clamp on sigma (or 1 - sigma) when converting predictions to velocity
ENERGY_SCORE_DRAWS = 2  # draws per sample under the energy score (two give an unbiased estimate of it)
SIGMA_DATA = 0.5  # the clean latents' standard deviation assumed by the preconditioning (EDM's value)


class TrainingTerms(NamedTuple):
    """What one training step compares: ``loss = mean((pred - target)^2)`` weighted by ``loss_mask``."""

    pred: torch.Tensor  # (B, F, C, h, w) predicted velocity (loss_space "sample": predicted clean latents)
    target: torch.Tensor  # (B, F, C, h, w) true velocity (loss_space "sample": clean latents)
    loss_mask: torch.Tensor  # (B, F, 1, 1, 1) the layer's loss weight for generated frames, 0 for given frames
    noise_kl: torch.Tensor | None = None  # (B,) loss "encoded_noise": the encoded noise's KL to N(0, 1), nats


def sample_sigmas(batch_size: int, config: ObjectiveConfig, generator=None, device=None,
                  kinds: Sequence[TaskKind] | None = None) -> torch.Tensor:
    """(B,) sigmas in (0, 1]: logit-normal(loc, scale), then shifted toward noise by ``shift``;
    each is exactly 1 with probability ``one_step_fraction`` (the one-step regression samples),
    or, given each sample's kind of task, ``config.one_step_fraction_for(kind)``.

    With every such fraction 0 no extra random number is drawn, so the draws (and a resumed
    run) stay those of the plain objective.
    """
    u = torch.randn(batch_size, generator=generator, device=device)
    sigma = shift_sigmas(torch.sigmoid(u * config.logit_normal_scale + config.logit_normal_loc), config.shift)
    if kinds is None:
        fractions = [config.one_step_fraction] * batch_size
    else:
        fractions = [config.one_step_fraction_for(kind) for kind in kinds]
    if any(fractions):
        draws = torch.rand(batch_size, generator=generator, device=device)  # (B,)
        one_step = draws < torch.tensor(fractions, device=draws.device)
        sigma = torch.where(one_step, torch.ones_like(sigma), sigma)
    return sigma


def sample_kinds(given_frames: torch.Tensor) -> list[TaskKind]:
    """Each sample's kind of task from its given frames: (B, F) bool, four equal sub-clips on F."""
    given_layers = given_sub_clips(given_frames).tolist()  # (B, 4)
    return [task_kind([name for name, given in zip(LAYER_ORDER, row) if given]) for row in given_layers]


def shift_sigmas(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """sigma -> shift * sigma / (1 + (shift - 1) * sigma); shift > 1 moves mass toward noise."""
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def per_clip(values: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """(B, C) values -> a view of ``shape`` (B, F, C, h, w) holding each sample's value per channel at every
    frame and position."""
    return values[:, None, :, None, None].expand(tuple(shape))


def draw_noise(shape: Sequence[int], kind: str, generator=None) -> torch.Tensor:
    """Standard normal noise of ``shape`` (B, F, C, h, w), float32 on the CPU: ``kind`` "per_pixel" draws
    every entry; "per_clip" one value per sample and channel, the same at every frame and position."""
    if kind == "per_pixel":
        return torch.randn(tuple(shape), generator=generator)
    if kind == "per_clip":
        return per_clip(torch.randn(shape[0], shape[2], generator=generator), shape).contiguous()
    raise ValueError(f"noise must be per_pixel or per_clip, got {kind!r}")


def noisy_latents(
    latents: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, given_frames: torch.Tensor
) -> torch.Tensor:
    """x_sigma with given frames kept clean.

    latents, noise: (B, F, C, h, w); sigma: (B,) in [0, 1]; given_frames: (B, F) bool.
    """
    s = _expand(sigma, latents)
    mixed = (1.0 - s) * latents + s * noise  # (B, F, C, h, w)
    keep = given_frames[:, :, None, None, None]
    return torch.where(keep, latents, mixed)


def preconditioning(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """EDM's skip and output scales (Karras et al. 2022) for ``x_sigma = (1 - sigma) x0 + sigma noise``.

    sigma: any shape, in [0, 1]. Returns (c_skip, c_out) of that shape, with
    ``x0 = c_skip * x_sigma + c_out * output`` the best linear guess of x0 from x_sigma plus a
    unit-variance correction, for clean latents of standard deviation ``SIGMA_DATA``: at sigma 0
    (1, 0), the identity, so the network need not learn to copy a nearly clean input; at sigma 1
    (0, SIGMA_DATA), a regression of the clean layers from pure noise.
    """
    keep = 1.0 - sigma
    variance = keep**2 * SIGMA_DATA**2 + sigma**2  # of x_sigma
    return keep * SIGMA_DATA**2 / variance, sigma * SIGMA_DATA / variance.sqrt()


def sample_from_output(output: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor, prediction: str) -> torch.Tensor:
    """The clean latents x0 the network output stands for. output, noisy: (B, F, C, h, w); sigma: (B,).

    ``prediction`` "sample": the output itself; "preconditioned_sample": ``c_skip * noisy + c_out *
    output`` (:func:`preconditioning`); "velocity": ``noisy - sigma * output``; "noise":
    ``(noisy - sigma * output) / (1 - sigma)``, its denominator clamped at ``MIN_DENOMINATOR``.
    """
    s = _expand(sigma, noisy)
    if prediction == "sample":
        return output
    if prediction == "preconditioned_sample":
        c_skip, c_out = preconditioning(s)
        return c_skip * noisy + c_out * output
    if prediction == "velocity":
        return noisy - s * output
    if prediction == "noise":
        return (noisy - s * output) / (1.0 - s).clamp(min=MIN_DENOMINATOR)
    raise ValueError(f"prediction must be velocity, sample, preconditioned_sample or noise, got {prediction!r}")


def velocity_from_output(
    output: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor, prediction: str
) -> torch.Tensor:
    """Turn the network output into a velocity, whatever it predicts.

    output, noisy: (B, F, C, h, w); sigma: (B,). ``prediction`` is "velocity" (v), "sample" or
    "preconditioned_sample" (clean x0, :func:`sample_from_output`: v = (x - x0) / sigma) or
    "noise" (eps: v = (eps - x) / (1 - sigma)). At sigma = 1 a clean-layer prediction gives
    v = x - x0, so one Euler step to sigma 0 lands exactly on x0.
    """
    s = _expand(sigma, noisy)
    if prediction == "velocity":
        return output
    if prediction in CLEAN_LAYER_PREDICTIONS:
        return (noisy - sample_from_output(output, noisy, sigma, prediction)) / s.clamp(min=MIN_DENOMINATOR)
    if prediction == "noise":
        return (output - noisy) / (1.0 - s).clamp(min=MIN_DENOMINATOR)
    raise ValueError(f"prediction must be velocity, sample, preconditioned_sample or noise, got {prediction!r}")


def repeat_rows(times: int, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each tensor (B, ...) stacked ``times`` over on its first axis: (times * B, ...), copy-major."""
    return tuple(x.repeat(times, *[1] * (x.ndim - 1)) for x in tensors)


def frame_loss_weights(given_frames: torch.Tensor, config: ObjectiveConfig, dtype=torch.float32) -> torch.Tensor:
    """(B, F) loss weight of each frame: its sub-clip's ``layer_loss_weights`` where generated, 0 where given.

    given_frames: (B, F) bool, four equal sub-clips on F.
    """
    layer_weights = torch.tensor(config.layer_loss_weights.in_layer_order(), dtype=dtype)  # (4,)
    frame_weights = layer_weights.repeat_interleave(given_frames.shape[1] // 4).to(given_frames.device)  # (F,)
    return (~given_frames).to(dtype) * frame_weights


def training_terms(
    transformer,
    latents: torch.Tensor,
    prompt_embeds: torch.Tensor,
    given_frames: torch.Tensor,
    config: ObjectiveConfig,
    generator=None,
) -> TrainingTerms:
    """One flow-matching step's prediction, target and loss mask.

    latents: (B, F, C, h, w) clean latents of all four sub-clips; prompt_embeds: (B, 3, L, D);
    given_frames: (B, F) bool, True where the sub-clip is given (clean, no loss). Generated
    frames weigh ``config.layer_loss_weights`` of their sub-clip (four equal sub-clips on F).
    The loss compares velocities, or with ``config.loss_space == "sample"`` the clean latents
    (the velocity loss times sigma^2: the same at sigma = 1). Each sample's one-step fraction
    is its kind's (:meth:`ObjectiveConfig.one_step_fraction_for`). With ``config.loss ==
    "energy_score"`` every sample is drawn ``ENERGY_SCORE_DRAWS`` times from independent noise at
    one sigma, so the terms hold ``ENERGY_SCORE_DRAWS * B`` rows, draw-major (:func:`energy_score`);
    with ``"nearest_draw"`` each sample's noise is the one of its candidates whose draw lies
    nearest its layers (:func:`nearest_noise`); with ``"encoded_noise"`` it is drawn from what the
    transformer's noise encoder reads off the sample's layers, and the terms carry its KL.
    """
    batch = latents.shape[0]
    sigma = sample_sigmas(batch, config, generator=generator, kinds=sample_kinds(given_frames)).to(latents.device)  # (B,)
    draws = ENERGY_SCORE_DRAWS if config.loss == "energy_score" else 1
    if draws > 1:  # each sample drawn again from its own noise at the same sigma: (draws * B, ...), draw-major
        latents, prompt_embeds, given_frames, sigma = repeat_rows(draws, latents, prompt_embeds, given_frames, sigma)
    noise_kl = None
    if config.loss == "nearest_draw":
        noise = nearest_noise(transformer, latents, prompt_embeds, given_frames, sigma, config, generator)
    elif config.loss == "encoded_noise":
        mean, log_var = transformer.noise_encoder(latents)  # (B, C) each
        noise = per_clip(draw_encoded(mean, log_var, generator), latents.shape)
        noise_kl = kl_to_standard_normal(mean, log_var)  # (B,)
    else:
        noise = draw_noise(latents.shape, config.noise, generator).to(latents)  # (draws * B, F, C, h, w)
    noisy = noisy_latents(latents, noise, sigma, given_frames)
    # (draws * B, F, C, h, w)
    output = transformer(noisy, prompt_embeds, timestep=sigma * 1000.0, given_frames=given_frames).sample
    loss_mask = frame_loss_weights(given_frames, config, latents.dtype)[:, :, None, None, None]  # (B, F, 1, 1, 1)
    if config.loss_space == "sample":
        return TrainingTerms(pred=sample_from_output(output, noisy, sigma, config.prediction), target=latents,
                             loss_mask=loss_mask, noise_kl=noise_kl)
    return TrainingTerms(pred=velocity_from_output(output, noisy, sigma, config.prediction), target=noise - latents,
                         loss_mask=loss_mask, noise_kl=noise_kl)


@torch.no_grad()
def nearest_noise(transformer, latents: torch.Tensor, prompt_embeds: torch.Tensor, given_frames: torch.Tensor,
                  sigma: torch.Tensor, config: ObjectiveConfig, generator=None) -> torch.Tensor:
    """The noise, of ``config.nearest_draw_candidates`` draws per sample, whose clean layers the network
    puts nearest the sample's own (the generated frames' ``layer_loss_weights``-weighted squared error):
    implicit maximum likelihood estimation (Li & Malik 2018), a one-step sampler trained on its nearest
    draw covering every answer a prompt allows instead of returning their mean.

    latents: (B, F, C, h, w); prompt_embeds: (B, 3, L, D); given_frames: (B, F) bool; sigma: (B,).
    Returns (B, F, C, h, w) noise of kind ``config.noise``; the candidates run without gradient.
    """
    count, batch = config.nearest_draw_candidates, latents.shape[0]
    latents_k, prompt_embeds_k, given_frames_k, sigma_k = repeat_rows(  # candidate-major: (count * B, ...)
        count, latents, prompt_embeds, given_frames, sigma)
    noise = draw_noise(latents_k.shape, config.noise, generator).to(latents)  # (count * B, F, C, h, w)
    noisy = noisy_latents(latents_k, noise, sigma_k, given_frames_k)
    output = transformer(noisy, prompt_embeds_k, timestep=sigma_k * 1000.0, given_frames=given_frames_k).sample
    drawn = sample_from_output(output.float(), noisy, sigma_k, config.prediction)  # (count * B, F, C, h, w)
    weights = frame_loss_weights(given_frames_k, config, latents.dtype)  # (count * B, F)
    error = (((drawn - latents_k) ** 2).flatten(2).mean(2) * weights).sum(1)  # (count * B,)
    nearest = error.view(count, batch).argmin(dim=0)  # (B,)
    return noise.view(count, batch, *latents.shape[1:])[nearest, torch.arange(batch, device=latents.device)]


def objective_loss(terms: TrainingTerms, config: ObjectiveConfig) -> torch.Tensor:
    """The scalar loss ``config.loss`` names: :func:`energy_score`, else (squared error, on every
    sample's own, its nearest or its encoded draw) :func:`masked_mse`, plus for the encoded draw
    ``encoded_noise_kl_weight`` times the mean KL of its noise."""
    if config.loss == "energy_score":
        return energy_score(terms)
    if config.loss == "encoded_noise":
        return masked_mse(terms) + config.encoded_noise_kl_weight * terms.noise_kl.mean()
    return masked_mse(terms)


def energy_score(terms: TrainingTerms) -> torch.Tensor:
    """Energy score of two draws per sample (Gneiting & Raftery 2007), a scalar: the mean over samples of
    ``(|x1 - y| + |x2 - y|) / 2 - |x1 - x2| / 2``, |.| the root of the ``loss_mask``-weighted mean square
    over the generated frames.

    terms: rows ``(x1 of every sample, x2 of every sample)``, as :func:`training_terms` makes them for
    ``loss == "energy_score"``. A strictly proper score: its expectation is least when the draws come
    from the layers' own distribution given the inputs, so a one-step sampler trained on it draws one
    of the answers a prompt allows, where a squared error is least at their mean.
    """
    first, second = terms.pred.chunk(ENERGY_SCORE_DRAWS)  # (B, F, C, h, w) each
    target, loss_mask = terms.target[:first.shape[0]], terms.loss_mask[:first.shape[0]]
    per_sample = (loss_mask.flatten(1).sum(1) * terms.pred[0, 0].numel()).clamp(min=1.0)  # (B,)

    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (B,); eps keeps the root's gradient finite
        return (((a - b) ** 2 * loss_mask).flatten(1).sum(1) / per_sample + 1e-12).sqrt()

    fit = (distance(first, target) + distance(second, target)) / 2
    return (fit - distance(first, second) / 2).mean()


def masked_mse(terms: TrainingTerms) -> torch.Tensor:
    """Mean squared error over the generated frames, weighted by ``loss_mask``; a scalar."""
    squared = (terms.pred - terms.target) ** 2 * terms.loss_mask  # (B, F, C, h, w)
    per_frame = terms.pred[0, 0].numel()
    return squared.sum() / (terms.loss_mask.sum() * per_frame).clamp(min=1.0)
