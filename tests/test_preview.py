"""Checkerboard previews: what a user sees when they open the PNG grid or the GIF."""

import numpy as np
import pytest
from PIL import Image

from layerflow_model.clip import LayeredClip, to_uint8
from layerflow_model.preview import (
    CHECKER_DARK,
    CHECKER_LIGHT,
    GAP,
    LABEL_WIDTH,
    checkerboard,
    over_checkerboard,
    HEADER_HEIGHT,
    write_comparison_grid,
    write_preview_gif,
    write_preview_grid,
)


def disc_clip(frames: int = 8, height: int = 32, width: int = 48) -> LayeredClip:
    """A soft-edged red disc moving over a gradient; every frame's background differs."""
    t = np.arange(frames)[:, None, None]
    y, x = np.mgrid[0:height, 0:width]
    alpha = np.broadcast_to(np.clip((9 - np.hypot(x - 10 - 3 * t, y - height / 2)) / 3, 0, 1), (frames, height, width))
    fg = np.broadcast_to(np.array([1.0, 0.1, 0.1]), (frames, height, width, 3))
    bg = np.stack(np.broadcast_arrays(t / frames + 0 * x, y / height + 0 * t, x / width + 0 * t), -1)
    return LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()


def panel(image: np.ndarray, row: int, col: int, height: int, width: int) -> np.ndarray:
    """The (height, width, 3) panel at grid ``row``, ``col`` of a preview grid image."""
    top, left = row * (height + GAP), LABEL_WIDTH + col * (width + GAP)
    return image[top : top + height, left : left + width]


def test_checkerboard_alternates_two_greys():
    board = checkerboard(16, 24, cell=8)
    assert board.shape == (16, 24, 3) and board.dtype == np.float32
    assert board[0, 0, 0] == pytest.approx(CHECKER_LIGHT) and board[0, 8, 0] == pytest.approx(CHECKER_DARK)
    assert board[8, 0, 0] == pytest.approx(CHECKER_DARK) and board[8, 8, 0] == pytest.approx(CHECKER_LIGHT)
    assert (board[:8, :8] == board[0, 0]).all()


def test_over_checkerboard_shows_fg_where_opaque_and_board_where_transparent():
    clip = disc_clip()
    shown = over_checkerboard(clip.fg, clip.alpha)
    board = checkerboard(32, 48)
    opaque, clear = clip.alpha == 1, clip.alpha == 0
    np.testing.assert_allclose(shown[opaque], clip.fg[opaque])
    np.testing.assert_allclose(shown[clear], np.broadcast_to(board, shown.shape)[clear])
    np.testing.assert_allclose(over_checkerboard(clip.fg[3], clip.alpha[3]), shown[3])  # one frame works too
    with pytest.raises(ValueError, match=r"fg must be \(\.\.\., H, W, 3\) and alpha \(\.\.\., H, W\)"):
        over_checkerboard(clip.fg, clip.alpha[:2])


def test_grid_rows_are_layers_and_columns_evenly_spaced_frames(tmp_path):
    clip = disc_clip()
    path = write_preview_grid(tmp_path / "preview.png", clip, num_frames=4)

    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (4 * (32 + GAP) - GAP, LABEL_WIDTH + 4 * (48 + GAP) - GAP, 3)
    fg_shown = over_checkerboard(clip.fg, clip.alpha)
    for col, frame in enumerate([0, 2, 5, 7]):  # evenly spaced over 8 frames
        np.testing.assert_array_equal(panel(image, 0, col, 32, 48), to_uint8(fg_shown[frame]))
        np.testing.assert_array_equal(panel(image, 1, col, 32, 48)[..., 0], to_uint8(clip.alpha[frame]))
        np.testing.assert_array_equal(panel(image, 2, col, 32, 48), to_uint8(clip.bg[frame]))
        np.testing.assert_array_equal(panel(image, 3, col, 32, 48), to_uint8(clip.blend[frame]))
    assert [p.name for p in tmp_path.iterdir()] == ["preview.png"]


def test_grid_shows_only_the_layers_a_clip_has(tmp_path):
    clip = disc_clip(frames=3).subset("bg", "blend")
    image = np.asarray(Image.open(write_preview_grid(tmp_path / "bg.png", clip, num_frames=4)))
    assert image.shape[:2] == (2 * (32 + GAP) - GAP, LABEL_WIDTH + 3 * (48 + GAP) - GAP)  # 2 rows, all 3 frames
    np.testing.assert_array_equal(panel(image, 0, 2, 32, 48), to_uint8(clip.bg[2]))


def test_comparison_grid_puts_the_prediction_beside_its_truth_scaled_up(tmp_path):
    truth = disc_clip(frames=4, height=16, width=16)
    prediction = LayeredClip(fg=truth.fg, alpha=truth.alpha * 0.5, bg=truth.bg).with_blend()
    path = write_comparison_grid(tmp_path / "hard.png", truth, prediction, num_frames=4, scale=2)

    image = np.asarray(Image.open(path).convert("RGB"))
    half = 4 * (32 + GAP) - GAP  # four frames, each 16 px scaled to 32
    assert image.shape == (HEADER_HEIGHT + 4 * (32 + GAP) - GAP, LABEL_WIDTH + 2 * half + 4 * GAP, 3)
    alpha_row = image[HEADER_HEIGHT + 32 + GAP : HEADER_HEIGHT + 2 * 32 + GAP]  # row 1: alpha
    true_alpha = alpha_row[:, LABEL_WIDTH + 3 * (32 + GAP) : LABEL_WIDTH + 3 * (32 + GAP) + 32, 0]
    pred_alpha = alpha_row[:, LABEL_WIDTH + half + 4 * GAP + 3 * (32 + GAP) :][:, :32, 0]
    scaled = np.kron(to_uint8(truth.alpha[3]), np.ones((2, 2), dtype=np.uint8))  # nearest neighbour x2
    np.testing.assert_array_equal(true_alpha, scaled)
    np.testing.assert_array_equal(pred_alpha, np.kron(to_uint8(prediction.alpha[3]), np.ones((2, 2), dtype=np.uint8)))

    with pytest.raises(ValueError, match=r"truth and prediction differ in shape: 4 frames of \(16, 16\) against 2"):
        write_comparison_grid(tmp_path / "bad.png", truth, disc_clip(frames=2, height=16, width=16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.png"]


def test_gif_plays_the_panels_side_by_side(tmp_path):
    clip = disc_clip()
    path = write_preview_gif(tmp_path / "preview.gif", clip, fps=8)

    gif = Image.open(path)
    assert gif.n_frames == 8 and gif.size == (4 * (48 + GAP) - GAP, 32)
    assert abs(gif.info["duration"] - 125) <= 10 and gif.info["loop"] == 0
    gif.seek(7)
    alpha_panel = np.asarray(gif.convert("RGB"))[:, 48 + GAP : 2 * 48 + GAP, 0].astype(int)
    assert np.abs(alpha_panel - to_uint8(clip.alpha[7])).mean() < 2  # GIF palette quantisation
    assert [p.name for p in tmp_path.iterdir()] == ["preview.gif"]


def test_bad_preview_settings(tmp_path):
    clip = disc_clip(frames=2)
    with pytest.raises(ValueError, match="num_frames must be >= 1, got 0"):
        write_preview_grid(tmp_path / "p.png", clip, num_frames=0)
    with pytest.raises(ValueError, match="fps must be a positive number, got 0"):
        write_preview_gif(tmp_path / "p.gif", clip, fps=0)
    with pytest.raises(ValueError, match="checkerboard needs height, width, cell >= 1"):
        checkerboard(8, 8, cell=0)
    assert list(tmp_path.iterdir()) == []
