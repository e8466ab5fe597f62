"""Coarse video: rembg matte, binarised, background inpainted — on the YouTube-VOS sample clip."""

import numpy as np

from data_recipes.coarse_video import CoarseVideoConfig, CoarseVideoRecipe
from data_recipes.inpainting import inpaint_background, temporal_fill
from layerflow_model.video_io import read_frames_folder


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def test_youtube_vos_clip_becomes_a_coarse_layered_clip(layerflow_samples):
    yvos = layerflow_samples / "YoutubeVOS"
    recipe = CoarseVideoRecipe(CoarseVideoConfig(src=yvos / "JPEGImages", frames=4))
    (item,) = recipe.plan()

    (sample,) = recipe.make(item)

    clip = sample.clip
    assert clip.blend.shape == (4, 432, 768, 3)
    assert set(np.unique(clip.alpha)) <= {0.0, 1.0} and clip.alpha.any()  # hard, stage-1 alpha
    np.testing.assert_array_equal(clip.fg[clip.alpha == 0], 0)
    reference = read_frames_folder(yvos / "impainting/SUV").rgb[:4]
    assert psnr(clip.bg, reference) > 35
    assert sample.prompts.fg.startswith("The camera captures the rear view")  # YoutubeVOS/meta_test.json
    assert sample.fps == 8 and sample.extra["matting_model"] == "u2netp"


def test_temporal_fill_takes_the_nearest_frame_where_the_pixel_is_visible():
    frames = np.arange(4, dtype=np.float32)[:, None, None, None] * np.ones((4, 2, 2, 3), np.float32)
    holes = np.zeros((4, 2, 2), bool)
    holes[1, 0, 0] = holes[2, 0, 0] = holes[3, 0, 0] = True  # visible only in frame 0
    holes[:, 1, 1] = True  # never visible
    filled, remaining = temporal_fill(frames, holes)
    assert filled[3, 0, 0, 0] == 0 and filled[1, 0, 0, 0] == 0
    assert remaining[:, 1, 1].all() and remaining.sum() == 4


def test_inpainting_recovers_a_smooth_background():
    y, x = np.mgrid[0:32, 0:32] / 32.0
    background = np.stack([x, y, 0.5 + 0 * x], -1)[None].repeat(3, 0).astype(np.float32)
    frames, holes = background.copy(), np.zeros((3, 32, 32), bool)
    for t in range(3):  # a square moving right covers part of each frame, a still one always covers its spot
        holes[t, 10:20, 4 + 6 * t:14 + 6 * t] = True
        holes[t, 24:28, 24:28] = True
        frames[t][holes[t]] = (1.0, 0.0, 0.0)
    restored = inpaint_background(frames, holes, dilate_px=1)
    assert psnr(restored, background) > 30 > psnr(frames, background)
