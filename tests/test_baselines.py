"""Decomposition baselines: the temporal median and rembg + inpainting, and `layerflow decompose --method`."""

import numpy as np
import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from data_recipes.baselines import MedianBaseline, MedianConfig, make_baseline
from data_recipes.framing import fit_frames
from flows.cli_eval import decompose
from layerflow_model.layerflow_folder import read_layerflow_sequence
from layerflow_model.matting_metrics import alpha_iou
from layerflow_model.video_io import read_video, write_png_sequence

app = typer.Typer(callback=lambda: None)  # a command group, as flows/cli.py's app
app.command("decompose")(decompose)
runner = CliRunner(env={"COLUMNS": "300"})


def still_scene_with_moving_square(frames: int = 5, size: int = 32):
    """A still textured background and an opaque white 8x8 square moving 6 pixels right per frame."""
    rng = np.random.default_rng(0)
    background = (0.2 + 0.3 * rng.random((size, size, 3))).astype(np.float32)  # [0.2, 0.5]: far from white
    video = np.repeat(background[None], frames, axis=0)
    alpha = np.zeros((frames, size, size), dtype=np.float32)
    for t in range(frames):
        alpha[t, 12:20, 2 + 6 * t:10 + 6 * t] = 1.0
    video[alpha > 0] = 1.0
    return video, alpha, background


def test_median_recovers_a_still_background_and_the_moving_object():
    video, alpha, background = still_scene_with_moving_square()
    clip = MedianBaseline(MedianConfig(open_radius=0, close_radius=0)).decompose(video)  # the raw threshold
    # Each pixel is covered in at most 2 of 5 frames, so the median is the background exactly.
    np.testing.assert_array_equal(clip.bg, np.repeat(background[None], 5, axis=0))
    np.testing.assert_array_equal(clip.alpha, alpha)  # the distance is >= 0.5 inside, 0 outside
    np.testing.assert_array_equal(clip.blend, video)
    np.testing.assert_array_equal(clip.fg[alpha > 0], 1.0)


def test_median_morphology_drops_specks_and_fills_gaps():
    video, alpha, background = still_scene_with_moving_square(size=64)
    video[2, 40, 40] = 1.0  # a one-pixel speck of noise
    video[2, 15, 17] = background[15, 17]  # a one-pixel hole in the square of frame 2
    raw = MedianBaseline(MedianConfig(open_radius=0, close_radius=0)).decompose(video)
    assert raw.alpha[2, 40, 40] == 1.0 and raw.alpha[2, 15, 17] == 0.0
    clip = MedianBaseline(MedianConfig(open_radius=0, close_radius=1 / 64)).decompose(video)
    assert clip.alpha[2, 15, 17] == 1.0  # closing with a 3x3 disc fills the hole
    clip = MedianBaseline(MedianConfig(open_radius=1 / 64, close_radius=0)).decompose(video)
    assert clip.alpha[2, 40, 40] == 0.0 and clip.alpha[2, 16, 16] == 1.0  # opening drops the speck, keeps the square


def test_classical_mattes_a_real_sequence(layerflow_samples):
    gt = read_layerflow_sequence(layerflow_samples / "DAVIS" / "480p" / "lucia", layers=("alpha", "blend"), fg_matte=None)
    frames = fit_frames(gt.blend[:3], (120, 180))  # (3, 120, 180, 3), small to keep the test fast
    truth = fit_frames(gt.alpha[:3], (120, 180))
    clip = make_baseline("classical").decompose(frames)
    assert set(np.unique(clip.alpha)) <= {0.0, 1.0}
    assert alpha_iou(clip.alpha, truth) > 0.6  # the person is found
    far = clip.alpha == 0  # away from the matte (beyond the dilated hole) the background is the frame
    assert np.abs(clip.bg - frames)[far].mean() < 0.02


def test_unknown_baselines_and_bad_settings_are_named():
    with pytest.raises(ValueError, match=r"unknown baseline 'sam'; choose one of \['classical', 'median'\]"):
        make_baseline("sam")
    with pytest.raises(ValidationError, match="threshold"):
        make_baseline("median", threshold=2.0)


def test_decompose_command_writes_the_official_layout_and_a_transparent_video(tmp_path):
    video, alpha, _ = still_scene_with_moving_square()
    write_png_sequence(tmp_path / "input", video)
    result = runner.invoke(app, ["decompose", str(tmp_path / "input"), "--method", "median", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    layers = read_layerflow_sequence(tmp_path / "out")
    np.testing.assert_allclose(layers.blend, video, atol=0.5 / 255)  # bl/ is the input frames
    assert alpha_iou(layers.alpha, alpha) > 0.9  # default morphology rounds the square's corners
    transparent = read_video(tmp_path / "out" / "foreground.webm", require_alpha=True)
    assert transparent.alpha.shape == (5, 32, 32)
    assert (tmp_path / "out" / "preview.png").stat().st_size > 0
