"""The official LayerFlow folder layout: read the real samples, write our own, reject broken folders."""

import json

import numpy as np
import pytest
from PIL import Image

from layerflow_model.clip import LayeredClip, LayerPrompts, composite, to_uint8
from layerflow_model.layerflow_folder import (
    FG_MATTE_GREY,
    iter_layerflow_folder,
    read_layerflow_folder,
    read_layerflow_prompts,
    read_layerflow_sequence,
    write_layerflow_meta,
    write_layerflow_sequence,
)
from layerflow_model.video_io import read_frames_folder, read_video

DAVIS_SEQUENCES = ["goat", "lucia", "mallard-water", "paragliding"]


def disc_clip(frames: int = 8, height: int = 32, width: int = 48) -> LayeredClip:
    """A soft-edged orange disc moving over a blue-green gradient, with its blend."""
    t = np.arange(frames)[:, None, None]
    y, x = np.mgrid[0:height, 0:width]
    alpha = np.clip((10 - np.hypot(x - 12 - 3 * t, y - height / 2)) / 4, 0.0, 1.0)
    alpha = np.broadcast_to(alpha, (frames, height, width))
    fg = np.broadcast_to(np.array([0.9, 0.5, 0.1]), (frames, height, width, 3))
    bg = np.stack(np.broadcast_arrays(0 * t + 0.1, y / height + 0 * t, x / width + 0 * t), -1)
    return LayeredClip(fg=fg, alpha=alpha, bg=bg).with_blend()


PROMPTS = LayerPrompts(fg="an orange disc", bg="a blue-green gradient", blend="an orange disc on a gradient")


def load_png(path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int16)


####################################################################################
# The real sample data
####################################################################################


def test_reads_the_official_davis_samples(layerflow_samples):
    root = layerflow_samples / "DAVIS" / "480p"
    seen = []
    for name, clip, prompts in iter_layerflow_folder(root):
        seen.append(name)
        assert clip.present_layers() == ("fg", "alpha", "bg", "blend")
        assert clip.num_frames == 16 and clip.size == (480, 720)
        for layer in clip.present_layers():
            values = getattr(clip, layer)
            assert values.dtype == np.float32 and values.min() >= 0.0 and values.max() <= 1.0
        # Real data is imperfect: its blend is not exactly the composite (README: about 6/255).
        assert np.abs(composite(clip.fg, clip.alpha, clip.bg) - clip.blend).mean() * 255 < 10
        assert prompts.fg and prompts.bg and prompts.blend and prompts.fg == prompts.fg.strip()
    assert seen == DAVIS_SEQUENCES


def test_read_layerflow_folder_lists_sequences_with_prompts(layerflow_samples):
    sequences = read_layerflow_folder(layerflow_samples / "DAVIS" / "480p", layers=("alpha",))
    assert [name for name, _, _ in sequences] == DAVIS_SEQUENCES
    name, clip, prompts = sequences[1]
    assert clip.present_layers() == ("alpha",) and clip.alpha.shape == (16, 480, 720)
    assert prompts.fg.startswith("A young woman")


def test_sample_fg_frames_are_the_foreground_over_grey(layerflow_samples):
    """The finding behind FG_MATTE_GREY: fg/ files hold a * colour + (1 - a) * 126/255."""
    seq = layerflow_samples / "DAVIS" / "480p" / "goat"
    fg_file, blend = load_png(seq / "fg" / "0000.png") / 255, load_png(seq / "bl" / "0000.png") / 255
    a = load_png(seq / "mask" / "0000.png")[..., None] / 255

    over_grey = np.abs(fg_file - (a * blend + (1 - a) * FG_MATTE_GREY)).mean() * 255
    over_black = np.abs(fg_file - a * blend).mean() * 255
    assert over_grey < 2  # measured 1.4
    assert over_black > 50  # measured 114: not premultiplied over black
    assert np.median(fg_file[a[..., 0] == 0]) * 255 == 126


def test_reading_then_writing_a_sample_reproduces_its_files(layerflow_samples, tmp_path):
    seq = layerflow_samples / "DAVIS" / "480p" / "goat"
    clip = read_layerflow_sequence(seq)
    first4 = LayeredClip(**{name: getattr(clip, name)[:4] for name in clip.present_layers()})

    written = write_layerflow_sequence(tmp_path / "goat", first4)

    def first_frames(seq_dir, sub):
        return np.stack([load_png(seq_dir / sub / f"{i:04d}.png") for i in range(4)])

    for sub in ["mask", "bg", "bl"]:
        np.testing.assert_array_equal(first_frames(written, sub), first_frames(seq, sub))
    mask, written_fg = first_frames(seq, "mask"), first_frames(written, "fg")
    error = np.abs(written_fg - first_frames(seq, "fg")).max(-1)
    assert error[mask == 255].max() == 0  # opaque foreground: exact
    assert (error[mask >= 128] <= 1).mean() > 0.999
    assert (written_fg[mask == 0] == 126).all()  # transparent: the official grey


def test_reads_youtube_vos_frames_and_masks_as_frame_folders(layerflow_samples):
    root = layerflow_samples / "YoutubeVOS"
    for sub in ["JPEGImages", "mask", "impainting"]:
        frames = read_frames_folder(root / sub / "SUV")
        assert frames.rgb.shape == (16, 432, 768, 3) and frames.alpha is None and frames.fps == 8.0
    assert "SUV" in read_layerflow_prompts(root)
    balloon = read_video(layerflow_samples / "Backgrounds_vid_train" / "balloon")
    assert balloon.num_frames == 16 and balloon.size == (432, 768)


####################################################################################
# Writing our own
####################################################################################


def test_sequence_round_trip(tmp_path):
    clip = disc_clip()
    write_layerflow_sequence(tmp_path / "disc", clip)

    assert sorted(p.name for p in (tmp_path / "disc").iterdir()) == ["bg", "bl", "fg", "mask"]
    assert Image.open(tmp_path / "disc" / "mask" / "0000.png").mode == "L"
    back = read_layerflow_sequence(tmp_path / "disc")
    for name in ["alpha", "bg", "blend"]:
        np.testing.assert_array_equal(to_uint8(getattr(back, name)), to_uint8(getattr(clip, name)))
    visible = clip.alpha >= 0.5
    assert np.abs(back.fg - clip.fg)[visible].max() * 255 <= 1.5  # 8-bit storage divided by alpha
    assert np.abs(back.fg_premultiplied() - clip.fg_premultiplied()).max() * 255 <= 1


@pytest.mark.parametrize(("fg_matte", "expected"), [(None, "straight"), (0.0, "over black")])
def test_other_fg_conventions(tmp_path, fg_matte, expected):
    clip = disc_clip(frames=2)
    write_layerflow_sequence(tmp_path / "disc", clip, fg_matte=fg_matte)
    stored = read_frames_folder(tmp_path / "disc" / "fg").rgb
    want = clip.fg if expected == "straight" else clip.fg_premultiplied()
    np.testing.assert_array_equal(to_uint8(stored), to_uint8(want))
    back = read_layerflow_sequence(tmp_path / "disc", fg_matte=fg_matte)
    assert np.abs(back.fg - clip.fg)[clip.alpha >= 0.5].max() * 255 <= 1.5


def test_meta_json_is_written_merged_and_read_back(tmp_path):
    clip = disc_clip(frames=3)
    write_layerflow_sequence(tmp_path / "a", clip)
    write_layerflow_sequence(tmp_path / "b", clip.subset("bg", "blend"))

    write_layerflow_meta(tmp_path, {"a": PROMPTS})
    other = LayerPrompts(fg="", bg="a gradient", blend="a gradient")
    meta_path = write_layerflow_meta(tmp_path, {"b": other})  # merges, keeps "a"

    videos = json.loads(meta_path.read_text())["videos"]
    assert videos["a"]["fg_prompt"] == "an orange disc" and videos["b"]["bl_prompt"] == "a gradient"
    assert videos["a"]["objects"]["1"]["frames"] == ["0000", "0001", "0002"] and videos["a"]["max_id"] == "1"
    sequences = read_layerflow_folder(tmp_path, layers=("bg",))
    assert [(name, prompts) for name, _, prompts in sequences] == [("a", PROMPTS), ("b", other)]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_sequences_without_prompts_get_none(tmp_path):
    write_layerflow_sequence(tmp_path / "a", disc_clip(frames=2))
    [(name, clip, prompts)] = read_layerflow_folder(tmp_path)
    assert name == "a" and prompts is None and clip.num_frames == 2


####################################################################################
# Broken folders
####################################################################################


@pytest.fixture
def written(tmp_path):
    """A freshly written 8-frame sequence ``tmp_path/disc``."""
    return write_layerflow_sequence(tmp_path / "disc", disc_clip())


def test_missing_sub_folder(written):
    for frame in (written / "mask").iterdir():
        frame.unlink()
    (written / "mask").rmdir()
    with pytest.raises(ValueError, match=r"sequence 'disc' .* lacks sub-folder\(s\) \['mask/'\]"):
        read_layerflow_sequence(written)
    # without fg, the mask is not needed
    assert read_layerflow_sequence(written, layers=("bg", "blend")).num_frames == 8


def test_missing_frame(written):
    (written / "mask" / "0003.png").unlink()
    with pytest.raises(ValueError, match=r"sequence 'disc': fg/ has 8 frames but mask/ has 7 .*'0003'"):
        read_layerflow_sequence(written)


def test_layers_of_different_sizes(written):
    for i in range(8):
        Image.new("RGB", (24, 16)).save(written / "bg" / f"{i:04d}.png")
    with pytest.raises(ValueError, match=r"sequence 'disc': frame sizes .* differ.*mask/ 32x48.*bg/ 16x24"):
        read_layerflow_sequence(written)


def test_unknown_layer_name(written):
    with pytest.raises(ValueError, match=r"layers must be a non-empty subset of .*got \['mask'\]"):
        read_layerflow_sequence(written, layers=("mask",))


def test_writing_fg_without_alpha(tmp_path):
    clip = disc_clip(frames=2).subset("fg", "bg")
    with pytest.raises(ValueError, match=r"needs layers \['fg', 'alpha'\]; missing \['alpha'\]"):
        write_layerflow_sequence(tmp_path / "x", clip)
    assert not (tmp_path / "x").exists()


def test_bad_meta_files(tmp_path, written):
    (tmp_path / "meta_a.json").write_text(json.dumps({"videos": {"disc": {"fg_prompt": "x", "bg_prompt": "y"}}}))
    with pytest.raises(ValueError, match=r"meta_a\.json: sequence 'disc' lacks prompt\(s\) \['bl_prompt'\]"):
        read_layerflow_prompts(tmp_path)

    write_layerflow_meta(tmp_path, {"disc": PROMPTS}, meta_name="meta_a.json")
    write_layerflow_meta(tmp_path, {"disc": LayerPrompts("other", "y", "z")}, meta_name="meta_b.json")
    with pytest.raises(ValueError, match=r"'disc' has different prompts in .*meta_a\.json and .*meta_b\.json"):
        read_layerflow_folder(tmp_path)

    (tmp_path / "meta_b.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"meta_b\.json is not readable JSON"):
        read_layerflow_prompts(tmp_path)

    with pytest.raises(ValueError, match=r"sequence 'ghost' has no frames .* write the sequence before its meta"):
        write_layerflow_meta(tmp_path, {"ghost": PROMPTS})


def test_folder_without_sequences(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(ValueError, match=r"holds no LayerFlow sequences"):
        read_layerflow_folder(tmp_path)
    with pytest.raises(ValueError, match=r"no such LayerFlow folder"):
        read_layerflow_folder(tmp_path / "absent")
