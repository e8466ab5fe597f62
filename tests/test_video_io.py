"""RGBA video files: write a soft-edged moving disc, read it back, measure what survives."""

import numpy as np
import pytest
from PIL import Image

from layerflow_model.clip import to_uint8
from layerflow_model.video_io import (
    atomic_output,
    read_frames_folder,
    read_video,
    write_grey_png_sequence,
    write_png_sequence,
    write_rgb_mp4,
    write_rgba_prores,
    write_rgba_webm,
)


def moving_disc(frames: int = 8, height: int = 64, width: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """rgb (T, H, W, 3) colour gradients and alpha (T, H, W) of a soft-edged disc moving right; [0, 1]."""
    t = np.arange(frames)[:, None, None]
    y, x = np.mgrid[0:height, 0:width]
    distance = np.hypot(x - width / 4 - 3 * t, y - height / 2)
    alpha = np.clip((height / 4 - distance) / 6, 0.0, 1.0)
    rgb = np.stack(np.broadcast_arrays(x / width + 0 * t, y / height + 0 * t, 0.5 + 0.3 * np.sin(x / 5 + t)), -1)
    return rgb.astype(np.float32), alpha.astype(np.float32)


def mean_abs_255(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean() * 255)


####################################################################################
# Round trips
####################################################################################


def test_webm_vp9_keeps_alpha(tmp_path):
    rgb, alpha = moving_disc()
    path = write_rgba_webm(tmp_path / "disc.webm", rgb, alpha, fps=8)

    video = read_video(path, require_alpha=True)

    assert video.rgb.shape == (8, 64, 64, 3) and video.alpha.shape == (8, 64, 64)
    assert video.rgb.dtype == np.float32 and video.fps == 8.0
    assert mean_abs_255(video.alpha, alpha) <= 2  # measured 0.17
    opaque = alpha > 0.5
    assert np.abs(video.rgb - rgb)[opaque].mean() * 255 <= 6  # measured 2.8 (4:2:0 chroma)


def test_prores_4444_keeps_alpha_within_one_level(tmp_path):
    rgb, alpha = moving_disc()
    path = write_rgba_prores(tmp_path / "disc.mov", rgb, alpha, fps=8)

    video = read_video(path, require_alpha=True)

    assert mean_abs_255(video.alpha, alpha) <= 1  # measured 0.07
    assert np.abs(video.alpha - alpha).max() * 255 <= 2  # measured 1.5 (incl. 8-bit input rounding)
    assert np.abs(video.rgb - rgb)[alpha > 0.5].mean() * 255 <= 1  # measured 0.35
    assert video.fps == 8.0


@pytest.mark.parametrize("write, name", [(write_rgba_webm, "disc.webm"), (write_rgba_prores, "disc.mov"),
                                         (lambda path, rgb, alpha, fps: write_rgb_mp4(path, rgb, fps), "disc.mp4")])
def test_the_same_frames_make_the_same_file(tmp_path, write, name):
    rgb, alpha = moving_disc()
    first = write(tmp_path / "first" / name, rgb, alpha, fps=8)
    second = write(tmp_path / "second" / name, rgb, alpha, fps=8)

    assert first.read_bytes() == second.read_bytes()  # so a run's outputs hash the same when it is repeated


def test_png_sequence_is_exact(tmp_path):
    rgb, alpha = moving_disc()
    folder = write_png_sequence(tmp_path / "disc", rgb, alpha)

    assert sorted(p.name for p in folder.iterdir())[:3] == ["0000.png", "0001.png", "0002.png"]
    assert Image.open(folder / "0000.png").mode == "RGBA"
    frames = read_video(folder, require_alpha=True)  # a folder reads like a video
    np.testing.assert_array_equal(to_uint8(frames.alpha), to_uint8(alpha))
    np.testing.assert_array_equal(to_uint8(frames.rgb), to_uint8(rgb))


def test_uint8_input_round_trips_bit_exact_through_png(tmp_path):
    rgb, alpha = moving_disc()
    rgb8, alpha8 = to_uint8(rgb), to_uint8(alpha)

    frames = read_frames_folder(write_png_sequence(tmp_path / "rgba", rgb8, alpha8), fps=24)
    grey = read_frames_folder(write_grey_png_sequence(tmp_path / "matte", alpha8))

    assert frames.fps == 24.0
    np.testing.assert_array_equal((frames.rgb * 255).round(), rgb8)
    np.testing.assert_array_equal((frames.alpha * 255).round(), alpha8)
    assert Image.open(tmp_path / "matte" / "0000.png").mode == "L" and grey.alpha is None
    np.testing.assert_array_equal((grey.rgb[..., 1] * 255).round(), alpha8)  # grey repeated to 3 channels


def test_rgb_png_sequence_has_no_alpha(tmp_path):
    rgb, _ = moving_disc()
    frames = read_frames_folder(write_png_sequence(tmp_path / "opaque", rgb))
    assert frames.alpha is None and frames.rgb.shape == rgb.shape


def test_mp4_for_opaque_layers(tmp_path):
    rgb, _ = moving_disc()
    video = read_video(write_rgb_mp4(tmp_path / "bg.mp4", rgb, fps=8))

    assert video.alpha is None and video.rgb.shape == rgb.shape and video.fps == 8.0
    assert mean_abs_255(video.rgb, rgb) <= 6  # measured 3.1 (4:2:0 chroma on colour gradients)


def test_mp4_pads_odd_sizes_to_even(tmp_path):
    rgb, _ = moving_disc(frames=3, height=33, width=47)
    video = read_video(write_rgb_mp4(tmp_path / "odd.mp4", rgb, fps=8))
    assert video.rgb.shape == (3, 34, 48, 3)
    assert mean_abs_255(video.rgb[:, :33, :47], rgb) <= 8


def halve(frame: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H/2, W/2, C), mean of 2x2 blocks."""
    h, w, c = frame.shape
    return frame.reshape(h // 2, 2, w // 2, 2, c).mean(axis=(1, 3))


@pytest.mark.parametrize("container", ["disc.webm", "frames"])
def test_a_long_video_can_be_read_in_part_and_shrunk_frame_by_frame(tmp_path, container):
    rgb, alpha = moving_disc(frames=10)
    if container == "frames":
        path = write_png_sequence(tmp_path / container, rgb, alpha)
    else:
        path = write_rgba_webm(tmp_path / container, rgb, alpha, fps=8)
    whole = read_video(path)

    part = read_video(path, max_frames=6, each_frame=halve)  # only the halved frames are kept

    assert part.rgb.shape == (6, 32, 32, 3) and part.alpha.shape == (6, 32, 32)
    np.testing.assert_allclose(part.rgb, np.stack([halve(f) for f in whole.rgb[:6]]), atol=1e-6)
    np.testing.assert_allclose(part.alpha, np.stack([halve(a[..., None])[..., 0] for a in whole.alpha[:6]]), atol=1e-6)


####################################################################################
# Write-then-rename
####################################################################################


def test_writes_leave_no_temporary_files(tmp_path):
    rgb, alpha = moving_disc(frames=2, height=16, width=16)
    write_rgba_webm(tmp_path / "a.webm", rgb, alpha, fps=8)
    write_rgba_prores(tmp_path / "a.mov", rgb, alpha, fps=8)
    write_rgb_mp4(tmp_path / "a.mp4", rgb, fps=8)
    write_png_sequence(tmp_path / "frames", rgb, alpha)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mov", "a.mp4", "a.webm", "frames"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "clip.webm"
    target.write_bytes(b"previous")

    with pytest.raises(RuntimeError, match="encoder died"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("encoder died")

    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.webm"]


def test_png_sequence_replaces_an_old_folder_whole(tmp_path):
    rgb, alpha = moving_disc(frames=8, height=16, width=16)
    write_png_sequence(tmp_path / "frames", rgb, alpha)
    write_png_sequence(tmp_path / "frames", rgb[:3])
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["0000.png", "0001.png", "0002.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


####################################################################################
# Bad input
####################################################################################


def test_unreadable_files_name_the_path(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.webm: no such"):
        read_video(tmp_path / "missing.webm")

    (tmp_path / "empty.webm").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.webm is empty \(0 bytes\)"):
        read_video(tmp_path / "empty.webm")

    (tmp_path / "junk.mov").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=r"junk\.mov is not a readable video"):
        read_video(tmp_path / "junk.mov")


def test_truncated_video_is_rejected(tmp_path):
    rgb, alpha = moving_disc()
    data = write_rgba_prores(tmp_path / "full.mov", rgb, alpha, fps=8).read_bytes()
    (tmp_path / "cut.mov").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.mov"):
        read_video(tmp_path / "cut.mov")


def test_require_alpha_rejects_opaque_video(tmp_path):
    rgb, _ = moving_disc(frames=2, height=16, width=16)
    path = write_rgb_mp4(tmp_path / "opaque.mp4", rgb, fps=8)
    with pytest.raises(ValueError, match=r"opaque\.mp4 has no alpha channel"):
        read_video(path, require_alpha=True)


@pytest.mark.parametrize(
    ("rgb", "alpha", "match"),
    [
        (np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), r"rgb must be a \(T, H, W, 3\) array, got shape \(2, 8, 8\)"),
        (np.zeros((2, 8, 8, 4)), np.zeros((2, 8, 8)), r"rgb must be a \(T, H, W, 3\) array"),
        (np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8, 1)), r"alpha must be a \(T, H, W\) array"),
        (np.zeros((2, 8, 8, 3)), np.zeros((3, 8, 8)), r"alpha must match rgb.*\(2, 8, 8\).*\(3, 8, 8\)"),
        (np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 6)), r"alpha must match rgb.*\(2, 8, 6\)"),
        (np.zeros((0, 8, 8, 3)), np.zeros((0, 8, 8)), r"rgb must hold at least one frame"),
        (np.zeros((2, 8, 8, 3), dtype=np.int64), np.zeros((2, 8, 8)), r"rgb must be float in \[0, 1\] or uint8"),
        (np.full((2, 8, 8, 3), np.nan), np.zeros((2, 8, 8)), r"rgb holds NaN"),
    ],
)
def test_bad_arrays_are_rejected_before_writing(tmp_path, rgb, alpha, match):
    for write, name in [(write_rgba_webm, "a.webm"), (write_rgba_prores, "a.mov")]:
        with pytest.raises(ValueError, match=match):
            write(tmp_path / name, rgb, alpha, fps=8)
    with pytest.raises(ValueError, match=match):
        write_png_sequence(tmp_path / "frames", rgb, alpha)
    assert list(tmp_path.iterdir()) == []


def test_bad_settings_are_rejected(tmp_path):
    rgb, alpha = moving_disc(frames=2, height=16, width=16)
    with pytest.raises(ValueError, match="fps must be a positive number, got 0"):
        write_rgba_webm(tmp_path / "a.webm", rgb, alpha, fps=0)
    with pytest.raises(ValueError, match=r"WebM path must end in \.webm, got .*a\.mp4"):
        write_rgba_webm(tmp_path / "a.mp4", rgb, alpha, fps=8)
    with pytest.raises(ValueError, match=r"crf must be an integer in \[0, 51\]"):
        write_rgb_mp4(tmp_path / "a.mp4", rgb, fps=8, crf=80)


def test_bad_frame_folders_name_the_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty holds no frames"):
        read_frames_folder(tmp_path / "empty")

    rgb, alpha = moving_disc(frames=3, height=16, width=16)
    folder = write_png_sequence(tmp_path / "mixed", rgb, alpha)
    Image.new("RGBA", (20, 16)).save(folder / "0001.png")
    with pytest.raises(ValueError, match=r"0001\.png is 20x16 .* same size"):
        read_frames_folder(folder)

    (folder / "0001.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"0001\.png is not a readable image"):
        read_video(folder)
