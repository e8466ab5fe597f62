"""Layer-separation metrics: hand-checked values on tiny arrays, and whole-clip scoring."""

import json
import math

import cv2
import numpy as np
import pytest

from layerflow_model.clip import LayeredClip
from layerflow_model.matting_metrics import (
    alpha_area_ratio,
    alpha_conn,
    alpha_dtssd,
    alpha_grad,
    alpha_iou,
    alpha_mad,
    alpha_mse,
)
from layerflow_model.metrics import (
    METRIC_NAMES,
    composite_mae,
    dynamic_degree,
    farneback_flow,
    json_safe,
    psnr,
    score_clip,
    ssim,
    summarize,
    warp_error,
)


def moving_texture_clip(num_frames: int = 4, shift: int = 2) -> LayeredClip:
    """A smooth random texture sliding `shift` pixels right per frame, under a square foreground."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.random((48, 64)).astype(np.float32), (0, 0), 2.0)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    bg = np.stack([np.repeat(np.roll(texture, shift * t, axis=1)[..., None], 3, axis=-1) for t in range(num_frames)])
    alpha = np.zeros((num_frames, 48, 64), dtype=np.float32)
    alpha[:, 16:32, 20:40] = 1.0
    alpha[:, 15, 20:40] = 0.5  # a soft edge
    fg = np.broadcast_to(np.array([0.9, 0.2, 0.1], dtype=np.float32), bg.shape).copy()
    return LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()


# ---------------------------------------------------------------------------------------
# Alpha matte (RVM conventions)
# ---------------------------------------------------------------------------------------


def test_alpha_mad_and_mse_are_scaled_by_1e3():
    true = np.zeros((1, 2, 2), dtype=np.float32)
    pred = true.copy()
    pred[0, 0, 0] = 0.4  # one wrong pixel of four
    # MAD: 0.4 / 4 = 0.1 -> x 1e3 = 100.  MSE: 0.4^2 / 4 = 0.04 -> x 1e3 = 40.
    assert alpha_mad(pred, true) == pytest.approx(100.0)
    assert alpha_mse(pred, true) == pytest.approx(40.0)


def test_alpha_grad_of_an_impulse_is_its_filter_energy():
    true = np.zeros((1, 9, 9), dtype=np.float32)
    true[0, 4, 4] = 1.0  # an impulse in the middle of a 9 x 9 frame
    # The x and y filters are 9 x 9 with unit L2 norm, so the impulse's squared gradient
    # magnitude summed over the frame is 1 + 1 = 2. An all-zero prediction has no gradient:
    # error = 2 / 1000.
    assert alpha_grad(np.zeros_like(true), true) == pytest.approx(0.002, rel=1e-6)
    # Each frame is min-max normalised first, so a half-strength copy has the same gradient.
    assert alpha_grad(0.5 * true, true) == pytest.approx(0.0)


def test_alpha_conn_counts_a_pixel_cut_off_from_the_matte():
    true = np.ones((1, 2, 2), dtype=np.float32)
    pred = true.copy()
    pred[0, 1, 1] = 0.0
    # The intersection at every threshold 0.1..1 is the other three (4-connected) pixels, so
    # pixel (1, 1) gets level 0 and the rest level 1. At (1, 1): d_true = 1 - 0 >= 0.15 ->
    # phi_true = 0; d_pred = 0 -> phi_pred = 1. Elsewhere d = 0 for both. Error = 1 / 1000.
    assert alpha_conn(pred, true) == pytest.approx(0.001)


def test_alpha_dtssd_measures_changes_the_truth_does_not_make():
    true = np.zeros((2, 2, 2), dtype=np.float32)  # a still matte
    pred = true.copy()
    pred[1, 0, 0] = 0.2  # one pixel flickers in frame 1
    # One frame pair: sqrt(0.2^2 / 4 pixels) = sqrt(0.01) = 0.1 -> x 1e2 = 10.
    assert alpha_dtssd(pred, true) == pytest.approx(10.0)
    # A constant offset in every frame changes nothing over time.
    assert alpha_dtssd(true + 0.3, true) == pytest.approx(0.0)
    assert math.isnan(alpha_dtssd(pred[:1], true[:1]))  # no frame pair


def test_alpha_iou_thresholds_at_one_half():
    pred = np.array([[[0.9, 0.9], [0.1, 0.1]]], dtype=np.float32)
    true = np.array([[[0.9, 0.1], [0.1, 0.1]]], dtype=np.float32)
    # pred > 0.5: 2 pixels, true > 0.5: 1 pixel, both: 1 -> IoU = 1 / 2.
    assert alpha_iou(pred, true) == pytest.approx(0.5)
    empty = np.zeros((1, 2, 2), dtype=np.float32)
    assert alpha_iou(empty, empty) == 1.0  # empty vs empty is a perfect match
    assert alpha_iou(pred, empty) == 0.0


def test_alpha_area_ratio_counts_the_object_wherever_it_is_but_not_a_faint_blur():
    true = np.zeros((2, 8, 8), dtype=np.float32)
    true[:, 2:4, 2:4] = 0.4  # a translucent 2x2 object: its own opacity is what counts
    assert alpha_area_ratio(true, true) == 1.0
    elsewhere = np.roll(true, 4, axis=2)  # a generated object may sit anywhere its prompt allows
    assert alpha_area_ratio(elsewhere, true) == 1.0
    faint = np.full_like(true, 0.4 * 4 / 64)  # the same alpha mass spread over the frame, as a mean regresses to
    assert alpha_area_ratio(faint, true) == 0.0
    larger = true.copy()
    larger[:, 2:6, 2:4] = 0.2  # at least half the true peak over twice the area
    assert alpha_area_ratio(larger, true) == pytest.approx(2.0)
    assert math.isnan(alpha_area_ratio(true, np.zeros_like(true)))  # no object to compare with


def test_alpha_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(1, 2, 2\) and \(2, 2, 2\)"):
        alpha_mad(np.zeros((1, 2, 2)), np.zeros((2, 2, 2)))


# ---------------------------------------------------------------------------------------
# Colour layers
# ---------------------------------------------------------------------------------------


def test_psnr_pools_the_error_over_the_sequence():
    true = np.zeros((2, 2, 2, 3), dtype=np.float32)
    pred = true.copy()
    pred[1, 0, 0, :] = 0.2  # frame 0 is exact; one pixel of frame 1 is off by 0.2
    # MSE over 2 * 2 * 2 * 3 = 24 values: 3 * 0.04 / 24 = 0.005 -> 10 log10(200) = 23.01 dB
    # (a mean of per-frame PSNRs would be inf, because frame 0 is exact).
    assert psnr(pred, true) == pytest.approx(10 * math.log10(200))
    assert psnr(true, true) == math.inf


def test_psnr_in_a_mask_and_an_empty_mask():
    true = np.zeros((1, 2, 2, 3), dtype=np.float32)
    pred = np.full_like(true, 0.5)
    pred[0, 1, 1, :] = 0.1
    hidden = np.zeros((1, 2, 2), dtype=bool)
    hidden[0, 1, 1] = True
    # Only pixel (1, 1) counts: MSE 0.1^2 = 0.01 -> 20 dB.
    assert psnr(pred, true, mask=hidden) == pytest.approx(20.0)
    assert math.isnan(psnr(pred, true, mask=np.zeros_like(hidden)))


def test_ssim_of_flat_frames_compares_their_means():
    # Flat frames have no variance, so SSIM = (2 * 0.5 * 1 + C1) / (0.5^2 + 1^2 + C1), C1 = 1e-4.
    half, one = np.full((1, 4, 4, 3), 0.5, dtype=np.float32), np.ones((1, 4, 4, 3), dtype=np.float32)
    assert ssim(half, one) == pytest.approx((1 + 1e-4) / (1.25 + 1e-4))
    assert ssim(one, one) == pytest.approx(1.0)


def test_composite_mae_checks_a_clip_against_its_own_layers():
    fg = np.ones((1, 2, 2, 3), dtype=np.float32)
    bg = np.zeros_like(fg)
    alpha = np.full((1, 2, 2), 0.5, dtype=np.float32)
    # 0.5 * 1 + 0.5 * 0 = 0.5, so a blend of 0.5 is consistent and one of 0.6 is 0.1 off.
    assert composite_mae(LayeredClip(fg=fg, alpha=alpha, bg=bg, blend=np.full_like(fg, 0.5))) == pytest.approx(0.0)
    assert composite_mae(LayeredClip(fg=fg, alpha=alpha, bg=bg, blend=np.full_like(fg, 0.6))) == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------
# Temporal
# ---------------------------------------------------------------------------------------


def test_warp_error_of_a_flat_flash_is_the_brightness_jump():
    frames = np.zeros((2, 8, 8, 3), dtype=np.float32)
    frames[1] = 0.5  # a flat frame has no texture to track: the flow is 0
    flow = farneback_flow(frames)
    assert flow.shape == (1, 8, 8, 2)
    assert dynamic_degree(flow) == 0.0
    assert warp_error(frames, flow) == pytest.approx(0.5)  # |0 - 0.5| everywhere


def test_sliding_texture_moves_two_pixels_per_frame_and_warps_back():
    clip = moving_texture_clip(shift=2)
    flow = farneback_flow(clip.blend)
    assert dynamic_degree(flow) == pytest.approx(2.0, abs=0.3)
    # The motion explains the next frame (a flickering clip would not be explained).
    assert warp_error(clip.blend, flow) < 0.03
    flicker = clip.blend * np.array([1.0, 0.5, 1.0, 0.5], dtype=np.float32)[:, None, None, None]
    assert warp_error(flicker, farneback_flow(flicker)) > 0.1


# ---------------------------------------------------------------------------------------
# Whole clips and many sequences
# ---------------------------------------------------------------------------------------


def test_a_clip_scored_against_itself_is_perfect():
    clip = moving_texture_clip()
    scores = score_clip(clip, clip)
    assert tuple(scores) == METRIC_NAMES
    for name in ("alpha_mad", "alpha_mse", "alpha_grad", "alpha_conn", "alpha_dtssd", "composite_mae"):
        assert scores[name] == 0.0, name
    assert scores["alpha_iou"] == 1.0 and scores["alpha_area_ratio"] == 1.0
    for name in ("fg_psnr", "bg_psnr", "bg_hidden_psnr", "blend_psnr"):
        assert scores[name] == math.inf, name
    assert scores["fg_ssim"] == pytest.approx(1.0) and scores["bg_ssim"] == pytest.approx(1.0)
    # The temporal metrics describe the predicted clip alone: the ground truth's own values.
    flow = farneback_flow(clip.blend)
    assert scores["warp_error"] == warp_error(clip.blend, flow)
    assert scores["dynamic_degree"] == dynamic_degree(flow)


def test_scores_follow_the_layers_that_matter():
    gt = moving_texture_clip()
    # Foreground colour where alpha is 0 is invisible: the premultiplied foreground ignores it.
    fg = gt.fg.copy()
    fg[:, :8] = 0.0  # rows 0-7 lie outside the square
    assert score_clip(LayeredClip(fg=fg, alpha=gt.alpha, bg=gt.bg, blend=gt.blend), gt)["fg_psnr"] == math.inf
    # With no foreground at all, the background has no hidden region.
    no_fg = LayeredClip(fg=gt.fg, alpha=np.zeros_like(gt.alpha), bg=gt.bg).with_blend()
    assert math.isnan(score_clip(no_fg, no_fg)["bg_hidden_psnr"])


def test_score_clip_rejects_missing_layers_and_mismatched_sizes():
    gt = moving_texture_clip()
    with pytest.raises(ValueError, match="blend"):
        score_clip(gt.subset("fg", "alpha", "bg"), gt)
    shorter = LayeredClip(fg=gt.fg[:2], alpha=gt.alpha[:2], bg=gt.bg[:2], blend=gt.blend[:2])
    with pytest.raises(ValueError, match=r"pred is \(2, 48, 64\), gt is \(4, 48, 64\)"):
        score_clip(shorter, gt)


def test_summarize_averages_finite_values_over_sequences():
    summary = summarize(
        {
            "bear": {"alpha_mad": 10.0, "bg_psnr": 20.0, "bg_hidden_psnr": math.nan, "blend_psnr": math.inf},
            "boat": {"alpha_mad": 30.0, "bg_psnr": math.inf, "bg_hidden_psnr": 24.0, "blend_psnr": math.inf},
        }
    )
    assert summary["mean"] == {
        "alpha_mad": 20.0,  # (10 + 30) / 2
        "bg_psnr": 20.0,  # the perfect (inf) sequence is left out
        "bg_hidden_psnr": 24.0,  # undefined (NaN) is left out
        "blend_psnr": math.inf,  # perfect everywhere
    }
    assert summary["per_sequence"]["boat"]["bg_psnr"] == math.inf
    with pytest.raises(ValueError, match="boat"):
        summarize({"bear": {"alpha_mad": 1.0}, "boat": {"bg_psnr": 1.0}})


def test_json_safe_writes_strict_json():
    summary = summarize({"bear": {"bg_psnr": math.inf, "bg_hidden_psnr": math.nan, "alpha_iou": np.float32(0.5)}})
    text = json.dumps(json_safe(summary), allow_nan=False)
    assert json.loads(text)["mean"] == {"bg_psnr": "inf", "bg_hidden_psnr": "nan", "alpha_iou": 0.5}
