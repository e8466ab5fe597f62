"""The layerflow command line runs each task on a saved model and writes files other tools open."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.inputs import crop_to_aspect, read_given_at_full_size, read_given_clip
from layerflow_model.clip import composite
from layerflow_model.layerflow_folder import read_layerflow_sequence
from layerflow_model.video_io import read_video, write_png_sequence, write_rgba_webm

runner = CliRunner(env={"COLUMNS": "300"})  # wide, so rich does not wrap messages


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "tiny"
    invoke("new-model", "--config", "tiny", "--out", folder)
    return folder


def test_help_lists_every_command():
    result = invoke("--help")
    for command in ("models", "new-model", "generate", "decompose", "fill-background", "fill-foreground",
                    "score", "evaluate", "train", "data"):
        assert command in result.output


def test_a_commands_help_wraps_its_paragraphs_at_the_terminals_width():
    # train-stage's docstring breaks "...the weights it / starts from..." at 120 columns in the source.
    narrow = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["train-stage", "--help"]).output
    text = [line.strip() for line in narrow.splitlines()]
    assert "the weights it starts from: a finished run is skipped, an interrupted one" in text
    assert max(len(line) for line in narrow.splitlines()) <= 80


def test_generate_writes_the_official_layout_and_videos(tiny_model, tmp_path):
    out = tmp_path / "generated"
    invoke("generate", "--model", tiny_model, "--out", out, "--fg-prompt", "a red circle",
           "--bg-prompt", "blue stripes", "--blend-prompt", "a red circle over blue stripes", "--steps", 2)
    for name in ("fg", "bg", "bl", "mask"):
        assert len(list((out / name).glob("*.png"))) == 4
    for name in ("foreground.webm", "foreground.mov", "background.mp4", "blend.mp4", "preview.png", "preview.gif"):
        assert (out / name).stat().st_size > 0
    assert read_video(out / "foreground.webm", require_alpha=True).alpha.shape == (4, 16, 16)
    record = json.loads((out / "layers.json").read_text())
    assert record["task"] == "generate" and record["prompts"]["fg"] == "a red circle" and record["seed"] == 0
    assert read_layerflow_sequence(out).present_layers() == ("fg", "alpha", "bg", "blend")


def test_decompose_keeps_the_input_as_the_blend(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.random((7, 32, 32, 3)).astype(np.float32)  # larger and longer than the model's 4-frame clip
    write_png_sequence(tmp_path / "input", frames)
    invoke("decompose", tmp_path / "input", "--model", tiny_model, "--out", tmp_path / "layers", "--steps", 1)
    blend = read_layerflow_sequence(tmp_path / "layers").blend
    assert blend.shape == (7, 16, 16, 3)
    expected = frames.reshape(7, 16, 2, 16, 2, 3).mean(axis=(2, 4))  # area downscale to 16x16
    np.testing.assert_allclose(blend, expected, atol=1.5 / 255)
    record = json.loads((tmp_path / "layers" / "layers.json").read_text())
    assert record["windows"] == [[0, 4], [2, 6], [3, 7]] and record["overlap"] == 2  # half the clip by default


def test_decompose_takes_the_first_frames_and_the_overlap_asked_for(tiny_model, tmp_path):
    write_png_sequence(tmp_path / "input", np.random.default_rng(2).random((9, 16, 16, 3)))
    invoke("decompose", tmp_path / "input", "--model", tiny_model, "--out", tmp_path / "layers", "--steps", 1,
           "--frames", 8, "--overlap", 0, "--refine-alpha")
    assert read_layerflow_sequence(tmp_path / "layers").num_frames == 8
    record = json.loads((tmp_path / "layers" / "layers.json").read_text())
    assert record["windows"] == [[0, 4], [4, 8]] and record["refine_alpha"]  # the tiny model's default is off


def test_decompose_at_full_size_writes_the_layers_at_the_inputs_size(tiny_model, tmp_path):
    frames = np.random.default_rng(3).random((5, 40, 34, 3)).astype(np.float32)  # the tiny model works at 16x16
    write_png_sequence(tmp_path / "input", frames)
    invoke("decompose", tmp_path / "input", "--model", tiny_model, "--out", tmp_path / "layers", "--steps", 1,
           "--full-size", "--refine-alpha")
    layers = read_layerflow_sequence(tmp_path / "layers")
    assert layers.alpha.shape == (5, 34, 34)  # the centred square of the input, at its size
    np.testing.assert_allclose(layers.blend, frames[:, 3:37], atol=0.5 / 255)
    record = json.loads((tmp_path / "layers" / "layers.json").read_text())
    assert (record["height"], record["width"], record["model_size"]) == (34, 34, [16, 16])


def test_fills_at_full_size_keep_the_given_layer_and_composite_the_blend(tiny_model, tmp_path):
    rng = np.random.default_rng(4)
    rgb, alpha = rng.random((5, 34, 40, 3)), rng.random((5, 34, 40))  # the tiny model works at 16x16
    write_png_sequence(tmp_path / "fg", rgb, alpha)
    write_png_sequence(tmp_path / "bg", rgb)
    invoke("fill-background", "--foreground", tmp_path / "fg", "--model", tiny_model, "--out", tmp_path / "a",
           "--steps", 1, "--full-size")
    invoke("fill-foreground", "--background", tmp_path / "bg", "--model", tiny_model, "--out", tmp_path / "b",
           "--steps", 1, "--full-size")

    with_bg, with_fg = read_layerflow_sequence(tmp_path / "a"), read_layerflow_sequence(tmp_path / "b")
    assert with_bg.bg.shape == with_fg.fg.shape == (5, 34, 34, 3)  # the centred square of the input, at its size
    np.testing.assert_allclose(with_bg.alpha, alpha[:, :, 3:37], atol=0.5 / 255)
    np.testing.assert_allclose(with_fg.bg, rgb[:, :, 3:37], atol=0.5 / 255)
    for layers in (with_bg, with_fg):
        np.testing.assert_allclose(layers.blend, composite(layers.fg, layers.alpha, layers.bg), atol=2 / 255)
    assert json.loads((tmp_path / "b" / "layers.json").read_text())["model_size"] == [16, 16]


def test_the_full_size_crop_keeps_the_models_aspect_with_even_sides():
    frame = np.zeros((481, 855, 3), np.float32)
    assert crop_to_aspect(frame, 32, 32).shape == (480, 480, 3)
    assert crop_to_aspect(frame, 32, 48).shape == (480, 720, 3)
    assert crop_to_aspect(frame[:, :300], 32, 48).shape == (200, 300, 3)


def test_a_foreground_is_shrunk_with_its_alpha_and_the_same_either_way(tmp_path):
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 < 20 ** 2).astype(np.float32)
    rgb = np.where(disc[..., None] > 0, [0.0, 1.0, 0.0], [1.0, 0.0, 0.0])  # green disc; red where transparent
    write_png_sequence(tmp_path / "fg", np.repeat(rgb[None], 4, axis=0), np.repeat(disc[None], 4, axis=0))

    clip, _ = read_given_clip({"fg": tmp_path / "fg"}, (4, 16, 16))
    small, full, _ = read_given_at_full_size({"fg": tmp_path / "fg"}, (4, 16, 16))
    edge = (clip.alpha > 0.05) & (clip.alpha < 0.95)
    assert edge.any() and clip.fg[..., 0][clip.alpha > 0.05].max() < 0.01  # no red fringe at the disc's edge
    np.testing.assert_allclose(clip.fg, small.fg, atol=1e-6)
    np.testing.assert_allclose(clip.alpha, small.alpha, atol=1e-6)
    assert full.fg.shape == (4, 64, 64, 3)


def test_fill_tasks_take_their_layer_files(tiny_model, tmp_path):
    rng = np.random.default_rng(1)
    rgb, alpha = rng.random((4, 16, 16, 3)), np.ones((4, 16, 16))
    write_rgba_webm(tmp_path / "fg.webm", rgb, alpha, fps=8)
    invoke("fill-background", "--foreground", tmp_path / "fg.webm", "--model", tiny_model, "--out", tmp_path / "a", "--steps", 1)
    longer = rng.random((6, 16, 16, 3))  # filled in two windows
    write_png_sequence(tmp_path / "bg", longer)
    invoke("fill-foreground", "--background", tmp_path / "bg", "--model", tiny_model, "--out", tmp_path / "b", "--steps", 1)
    assert json.loads((tmp_path / "b" / "layers.json").read_text())["task"] == "fill_foreground"
    np.testing.assert_allclose(read_layerflow_sequence(tmp_path / "b").bg, longer, atol=0.5 / 255)


def test_bad_inputs_are_clear_cli_errors(tiny_model, tmp_path):
    write_png_sequence(tmp_path / "opaque", np.zeros((4, 16, 16, 3)))
    result = runner.invoke(app, ["fill-background", "--foreground", str(tmp_path / "opaque"), "--model",
                                 str(tiny_model), "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "no alpha channel" in result.output
    write_png_sequence(tmp_path / "short", np.zeros((2, 16, 16, 3)))
    result = runner.invoke(app, ["decompose", str(tmp_path / "short"), "--model", str(tiny_model), "--out", str(tmp_path / "y")])
    assert result.exit_code != 0 and "has 2 frames; the model needs at least 4" in result.output
    result = runner.invoke(app, ["decompose", str(tmp_path / "opaque"), "--model", str(tiny_model), "--out",
                                 str(tmp_path / "z"), "--overlap", "4"])
    assert result.exit_code != 0 and "--overlap" in result.output and "at most 3" in result.output
