"""Copy-paste: RGBA images, matted plain images and RGBA videos pasted onto background videos."""

import json

import numpy as np
import pytest
from PIL import Image

from data_recipes.copy_paste import CopyPasteConfig, CopyPasteRecipe, Trajectory, paste
from layerflow_model.clip import composite
from layerflow_model.video_io import write_png_sequence, write_rgb_mp4, write_rgba_webm


def soft_disc(size: int, frames: int = 1, step: float = 0.0) -> np.ndarray:
    """RGBA (T, size, size, 4) uint8: an orange disc with a soft edge, moving right by ``step`` per frame."""
    t = np.arange(frames)[:, None, None]
    y, x = np.mgrid[0:size, 0:size]
    alpha = np.clip((size / 3 - np.hypot(x - size / 2 + step * (frames / 2 - t), y - size / 2)) / 3, 0, 1)
    rgb = np.broadcast_to(np.array([230, 120, 30]), alpha.shape + (3,))
    return np.concatenate([rgb, alpha[..., None] * 255], -1).astype(np.uint8)


@pytest.fixture
def foregrounds(tmp_path, layerflow_samples):
    """An RGBA PNG with a .txt caption, an RGBA WebM with a .json caption, an RGBA PNG frame folder,
    and a plain JPEG photo to matte."""
    folder = tmp_path / "fg"
    folder.mkdir()
    Image.fromarray(soft_disc(40)[0]).save(folder / "ball.png")
    (folder / "ball.txt").write_text("an orange ball")
    disc = soft_disc(24, frames=10, step=1.5)
    write_rgba_webm(folder / "rolling.webm", disc[..., :3], disc[..., 3], fps=8)
    (folder / "rolling.json").write_text(json.dumps({"fg": "an orange ball rolling right"}))
    write_png_sequence(folder / "frames", disc[..., :3], disc[..., 3])
    photo = Image.open(layerflow_samples / "DAVIS/480p/lucia/bl/0000.png").resize((96, 64))
    photo.save(folder / "walker.jpg")
    return folder


def test_every_kind_of_foreground_is_pasted_with_exact_layers(foregrounds, layerflow_samples):
    config = CopyPasteConfig(src=foregrounds, backgrounds=layerflow_samples / "Backgrounds_vid_train",
                             frames=8, height=32, width=48, per_foreground=2, fade_probability=0.5)
    recipe = CopyPasteRecipe(config)
    items = recipe.plan()
    assert len(items) == 8

    samples = [s for item in items for s in recipe.make(item)]

    assert len({s.key for s in samples}) == 8
    for sample in samples:
        clip = sample.clip
        assert clip.blend.shape == (8, 32, 48, 3)
        np.testing.assert_allclose(clip.blend, composite(clip.fg, clip.alpha, clip.bg), atol=1e-6)
        assert clip.alpha.max() > 0.5 and ((clip.alpha > 0.05) & (clip.alpha < 0.95)).any()
        assert sample.prompts.bg.startswith("A tranquil maritime scene")  # the balloon video's meta_test.json
        assert sample.fps == 8 and not sample.static
        assert set(sample.extra["trajectory"]) == {"start", "end", "scale", "angle", "fade"}
    by_source = {s.source.split(";")[0]: s for s in samples}  # the foreground's name in src
    assert set(by_source) == {"fg=ball.png", "fg=frames", "fg=rolling.webm", "fg=walker.jpg"}
    ball, rolling = by_source["fg=ball.png"], by_source["fg=rolling.webm"]
    assert ball.prompts.fg == "an orange ball"
    assert rolling.prompts.fg == "an orange ball rolling right"
    assert rolling.prompts.blend.startswith("an orange ball rolling right, in front of a tranquil maritime scene")


def test_trajectory_moves_scales_and_fades():
    fg_rgba = soft_disc(20)
    fg, alpha = np.repeat(fg_rgba[..., :3] / 255.0, 8, 0), np.repeat(fg_rgba[..., 3] / 255.0, 8, 0)
    bg = np.full((8, 40, 60, 3), 0.2, np.float32)
    trajectory = Trajectory(start=(0.25, 0.5), end=(0.75, 0.5), scale=(0.3, 0.6), angle=(0, 20), fade="in")
    clip = paste(fg.astype(np.float32), alpha.astype(np.float32), bg, trajectory)
    xs = np.arange(60)
    centre_x = (clip.alpha * xs).sum((1, 2)) / clip.alpha.sum((1, 2))
    assert np.all(np.diff(centre_x) > 0) and centre_x[0] < 20 < 40 < centre_x[-1]
    assert clip.alpha[-1].sum() > 2 * clip.alpha[0].sum()  # grows and fades in
    assert clip.alpha[0].max() < 0.5 and clip.alpha[-1].max() > 0.95


def test_background_videos_are_fitted_to_the_clip_size(tmp_path):
    fg_dir, bg_dir = tmp_path / "fg", tmp_path / "bg"
    fg_dir.mkdir(), bg_dir.mkdir()
    Image.fromarray(soft_disc(16)[0]).save(fg_dir / "ball.png")
    write_rgb_mp4(bg_dir / "ramp.mp4", np.random.default_rng(0).random((9, 36, 64, 3)), fps=12)
    recipe = CopyPasteRecipe(CopyPasteConfig(src=fg_dir, backgrounds=bg_dir, frames=8))
    (sample,) = [s for item in recipe.plan() for s in recipe.make(item)]
    assert sample.clip.size == (36, 64) and sample.clip.num_frames == 8 and sample.fps == 12
