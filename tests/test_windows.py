"""A video longer than the model's clip goes through it in overlapping windows, stitched back seamlessly."""

import numpy as np
import pytest

from layerflow_model import LayeredClip, LayerPrompts, build_pipeline, get_config
from layerflow_model.windows import crossfade_weights, sample_in_windows, split_windows, stitch_windows, window_starts


def random_clip(frames: int, seed: int = 0) -> LayeredClip:
    rng = np.random.default_rng(seed)
    fg, bg = rng.random((2, frames, 8, 8, 3), dtype=np.float32)
    alpha = rng.random((frames, 8, 8), dtype=np.float32)
    return LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()


def test_windows_step_by_the_clip_less_the_overlap_and_the_last_ends_on_the_last_frame():
    assert window_starts(8, 8, 4) == [0]
    assert window_starts(16, 8, 4) == [0, 4, 8]
    assert window_starts(17, 8, 4) == [0, 4, 8, 9]
    assert window_starts(20, 8, 0) == [0, 8, 12]


def test_bad_windows_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="overlap must be between 0 and 7"):
        window_starts(16, 8, 8)
    with pytest.raises(ValueError, match="5 frames is shorter than one window of 8"):
        window_starts(5, 8, 2)


def test_crossfade_ramps_over_the_overlap_at_both_ends():
    np.testing.assert_allclose(crossfade_weights(8, 3), [0.25, 0.5, 0.75, 1, 1, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(crossfade_weights(4, 0), [1, 1, 1, 1])


@pytest.mark.parametrize("overlap", [0, 3, 7])
def test_stitching_the_windows_of_a_clip_gives_the_clip_back(overlap):
    clip = random_clip(21)
    starts = window_starts(21, 8, overlap)
    stitched = stitch_windows(split_windows(clip, starts, 8), starts, overlap)
    for name in ("alpha", "bg", "blend"):
        np.testing.assert_allclose(getattr(stitched, name), getattr(clip, name), atol=1e-6)
    visible = clip.alpha > 1e-3  # straight colour is only defined where there is opacity
    np.testing.assert_allclose(stitched.fg[visible], clip.fg[visible], atol=1e-5)


def test_overlapping_frames_are_a_crossfade_of_the_two_windows():
    ones, zeros = (LayeredClip(bg=np.full((4, 2, 2, 3), v, np.float32)) for v in (1.0, 0.0))
    stitched = stitch_windows([ones, zeros], [0, 2], overlap=2)  # each window weighs 1/3 2/3 2/3 1/3
    np.testing.assert_allclose(stitched.bg[:, 0, 0, 0], [1, 1, 2 / 3, 1 / 3, 0, 0], rtol=1e-6)


def test_a_long_video_is_decomposed_in_windows_and_keeps_its_blend_exactly():
    pipe = build_pipeline(get_config("tiny"), seed=0)  # 4 frames of 16x16
    blend = random_clip(10).blend
    given = LayeredClip(blend=np.repeat(np.repeat(blend, 2, axis=1), 2, axis=2))  # (10, 16, 16, 3)
    result = sample_in_windows(pipe, LayerPrompts("", "", ""), given, "decompose", overlap=2, num_inference_steps=1)
    assert result.starts == [0, 2, 4, 6]
    assert result.clip.present_layers() == ("fg", "alpha", "bg", "blend") and result.clip.num_frames == 10
    np.testing.assert_array_equal(result.clip.blend, given.blend)
    assert result.num_inference_steps == 1 and result.guidance_scale == pipe.default_guidance([("blend",)])
