"""Refining a decomposition, and bringing it to full size, by the compositing equation blend = alpha * fg + (1 - alpha) * bg."""

import numpy as np
import pytest

from data_recipes.framing import fit_frames
from layerflow_model import LayeredClip
from layerflow_model.compositing import refine_by_compositing, upsample_by_compositing


def true_layers(seed=0, frames=2, height=6, width=6):
    """Layers with distinct fg and bg colours and alphas spread over [0, 1], their blend composited."""
    rng = np.random.default_rng(seed)
    fg = rng.uniform(0.6, 1.0, (frames, height, width, 3)).astype(np.float32)
    bg = rng.uniform(0.0, 0.3, (frames, height, width, 3)).astype(np.float32)
    alpha = rng.uniform(0.0, 1.0, (frames, height, width)).astype(np.float32)
    alpha[:, 0], alpha[:, 1] = 0.0, 1.0  # clear background and solid foreground rows
    return LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()


def test_true_layers_come_back_unchanged():
    truth = true_layers()
    refined = refine_by_compositing(truth)
    np.testing.assert_allclose(refined.alpha, truth.alpha, atol=1e-5)
    np.testing.assert_allclose(refined.fg, truth.fg, atol=1e-4)
    np.testing.assert_array_equal(refined.bg, truth.bg)
    np.testing.assert_array_equal(refined.blend, truth.blend)


def test_an_unsure_alpha_moves_towards_what_the_blend_says():
    truth = true_layers()
    noisy_alpha = np.clip(truth.alpha + np.random.default_rng(1).normal(0, 0.1, truth.alpha.shape), 0, 1)
    guess = LayeredClip(fg=truth.fg, alpha=noisy_alpha.astype(np.float32), bg=truth.bg, blend=truth.blend)

    refined = refine_by_compositing(guess)

    unsure = (noisy_alpha > 0.05) & (noisy_alpha < 0.95)
    error_before = np.abs(noisy_alpha - truth.alpha)[unsure].mean()
    error_after = np.abs(refined.alpha - truth.alpha)[unsure].mean()
    assert error_after < error_before / 5
    np.testing.assert_array_equal(refined.alpha[~unsure], guess.alpha[~unsure])  # sure pixels are kept


def test_where_fg_and_bg_agree_the_models_alpha_stays():
    truth = true_layers()
    same_colour = LayeredClip(fg=truth.bg, alpha=np.full_like(truth.alpha, 0.4), bg=truth.bg, blend=truth.bg)
    np.testing.assert_allclose(refine_by_compositing(same_colour).alpha, 0.4, atol=1e-6)


def test_the_foreground_colour_is_solved_where_alpha_is_unsure_and_high_enough():
    truth = true_layers()
    grey_fg = np.full_like(truth.fg, 0.5)
    guess = LayeredClip(fg=grey_fg, alpha=truth.alpha, bg=truth.bg, blend=truth.blend)

    refined = refine_by_compositing(guess, prior_weight=1e6)  # alpha held at the model's

    solved = (truth.alpha > 0.2) & (truth.alpha < 0.95)
    np.testing.assert_allclose(refined.fg[solved], truth.fg[solved], atol=1e-4)
    np.testing.assert_array_equal(refined.fg[~solved], grey_fg[~solved])


def test_refining_needs_all_four_layers_and_a_positive_prior_weight():
    truth = true_layers()
    with pytest.raises(ValueError, match="missing \\['blend'\\]"):
        refine_by_compositing(LayeredClip(fg=truth.fg, alpha=truth.alpha, bg=truth.bg))
    with pytest.raises(ValueError, match="prior_weight"):
        refine_by_compositing(truth, prior_weight=0.0)


def disc_layers(size, frames=2):
    """A sharp opaque disc over a gradient background, rendered at ``size`` x ``size``, blend composited."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    alpha = np.repeat(((xx - 0.5) ** 2 + (yy - 0.45) ** 2 < 0.3 ** 2).astype(np.float32)[None], frames, 0)
    fg = np.broadcast_to(np.float32([0.9, 0.2, 0.1]), (frames, size, size, 3)).copy()
    bg = np.repeat(np.stack([xx, yy, 1 - xx], -1).astype(np.float32)[None] * 0.5, frames, 0)
    return LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()


def test_upsampling_by_compositing_sharpens_the_edges_a_resize_blurs():
    full = disc_layers(64)
    small = LayeredClip(**{name: fit_frames(getattr(full, name), (16, 16)) for name in ("fg", "alpha", "bg")})

    resized = upsample_by_compositing(small, full.blend, refine=False)
    refined = upsample_by_compositing(small, full.blend)

    assert refined.alpha.shape == (2, 64, 64) and refined.fg.shape == (2, 64, 64, 3)
    np.testing.assert_array_equal(refined.blend, full.blend)  # the scene as given, at full size
    np.testing.assert_array_equal(refined.bg, resized.bg)
    error = {name: np.abs(clip.alpha - full.alpha).mean() for name, clip in (("resized", resized), ("refined", refined))}
    assert error["refined"] < error["resized"] / 3


def test_upsampling_needs_the_blend_frame_for_frame():
    small = disc_layers(16)
    with pytest.raises(ValueError, match="blend must be \\(2, H, W, 3\\)"):
        upsample_by_compositing(small, disc_layers(64, frames=3).blend)
