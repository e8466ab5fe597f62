"""The layered clip type: compositing, premultiplication and validation."""

import numpy as np
import pytest

from layerflow_model import LayeredClip, composite, premultiply, unpremultiply
from layerflow_model.clip import average_clips, flip_clip


def random_layers(frames=3, height=4, width=5, seed=0):
    rng = np.random.default_rng(seed)
    fg = rng.random((frames, height, width, 3), dtype=np.float32)
    alpha = rng.random((frames, height, width), dtype=np.float32)
    bg = rng.random((frames, height, width, 3), dtype=np.float32)
    return fg, alpha, bg


def test_composite_is_alpha_blend():
    fg, alpha, bg = random_layers()
    blend = composite(fg, alpha, bg)
    # A fully opaque pixel shows the foreground, a transparent one the background.
    alpha[0, 0, 0], alpha[0, 0, 1] = 1.0, 0.0
    blend = composite(fg, alpha, bg)
    np.testing.assert_allclose(blend[0, 0, 0], fg[0, 0, 0])
    np.testing.assert_allclose(blend[0, 0, 1], bg[0, 0, 1])
    np.testing.assert_allclose(blend, alpha[..., None] * fg + (1 - alpha[..., None]) * bg, atol=1e-6)


def test_premultiply_round_trip_where_visible():
    fg, alpha, _ = random_layers()
    alpha = np.clip(alpha, 0.1, 1.0)
    np.testing.assert_allclose(unpremultiply(premultiply(fg, alpha), alpha), fg, atol=1e-5)
    # Fully transparent pixels have no colour: it comes back as 0.
    assert unpremultiply(np.ones((1, 1, 1, 3), np.float32), np.zeros((1, 1, 1), np.float32)).max() == 0.0


def test_clip_recomputes_blend_and_reports_layers():
    fg, alpha, bg = random_layers()
    clip = LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()
    assert clip.present_layers() == ("fg", "alpha", "bg", "blend")
    assert clip.num_frames == 3 and clip.size == (4, 5)
    np.testing.assert_allclose(clip.fg_premultiplied(), fg * alpha[..., None], atol=1e-6)
    assert LayeredClip(blend=clip.blend).present_layers() == ("blend",)


def test_uint8_round_trip_is_exact():
    fg, alpha, bg = random_layers()
    as_uint8 = LayeredClip(fg=fg, alpha=alpha, bg=bg).to_uint8()
    again = LayeredClip.from_uint8(**as_uint8).to_uint8()
    for name in as_uint8:
        np.testing.assert_array_equal(as_uint8[name], again[name])


def test_mismatched_frame_counts_name_both_layers():
    fg, alpha, bg = random_layers()
    with pytest.raises(ValueError, match=r"fg is \(T, H, W\) = \(3, 4, 5\) but bg is \(2, 4, 5\)"):
        LayeredClip(fg=fg, alpha=alpha, bg=bg[:2])


def test_mismatched_sizes_name_both_layers():
    fg, alpha, _ = random_layers()
    with pytest.raises(ValueError, match=r"fg .* but alpha is \(3, 4, 4\)"):
        LayeredClip(fg=fg, alpha=alpha[:, :, :4])


def test_wrong_shapes_and_missing_layers_are_explained():
    fg, alpha, _ = random_layers()
    with pytest.raises(ValueError, match=r"alpha must be a \(T, H, W\) array"):
        LayeredClip(fg=fg, alpha=fg)
    with pytest.raises(ValueError, match="at least one"):
        LayeredClip()
    with pytest.raises(ValueError, match=r"missing \['bg'\]"):
        LayeredClip(fg=fg, alpha=alpha).with_blend()


def test_a_flip_undoes_itself_and_mirrors_every_layer():
    clip = LayeredClip(alpha=np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 24,
                       bg=np.zeros((2, 3, 4, 3), np.float32))
    mirrored = flip_clip(clip, (2,))
    np.testing.assert_array_equal(mirrored.alpha[:, :, 0], clip.alpha[:, :, -1])
    np.testing.assert_array_equal(flip_clip(mirrored, (2,)).alpha, clip.alpha)
    assert flip_clip(clip, ()) is clip


def test_the_average_of_clips_weighs_foreground_colour_by_opacity():
    red, blue = np.zeros((1, 1, 1, 3), np.float32), np.zeros((1, 1, 1, 3), np.float32)
    red[..., 0], blue[..., 2] = 1, 1
    opaque_red = LayeredClip(fg=red, alpha=np.ones((1, 1, 1), np.float32), bg=blue)
    faint_blue = LayeredClip(fg=blue, alpha=np.full((1, 1, 1), 0.25, np.float32), bg=red)
    mean = average_clips([opaque_red, faint_blue])
    np.testing.assert_allclose(mean.alpha, 0.625)
    np.testing.assert_allclose(mean.fg[0, 0, 0], [0.8, 0, 0.2])  # (1 x red + 0.25 x blue) / 1.25
    np.testing.assert_allclose(mean.bg[0, 0, 0], [0.5, 0, 0.5])
