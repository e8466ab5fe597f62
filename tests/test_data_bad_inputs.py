"""Bad input never stops a build: each kind is skipped and listed in manifest.json with its reason."""

import zlib

import numpy as np
import pytest
from PIL import Image

from data_recipes import build, make_recipe, read_manifest, recipe_config
from layerflow_model.video_io import write_rgb_mp4


def plant_bomb_png(path, width=8000, height=8000):
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # IHDR checksum
    path.write_bytes(bytes(data))


def plant_truncated(source, path, keep=0.5):
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def rgba_ball(size=24):
    y, x = np.mgrid[0:size, 0:size]
    alpha = np.clip(size / 3 - np.hypot(x - size / 2, y - size / 2), 0, 1) * 255
    return np.dstack([np.full((size, size, 3), 200), alpha]).astype(np.uint8)


def skipped_reasons(folder):
    return {entry.input.rsplit("/", 1)[-1]: entry.reason for entry in read_manifest(folder).skipped}


def test_bad_foregrounds_are_skipped_and_good_ones_pasted(tmp_path):
    fg, bg, out = tmp_path / "fg", tmp_path / "bg", tmp_path / "out"
    fg.mkdir(), bg.mkdir()
    Image.fromarray(rgba_ball()).save(fg / "good.png")
    Image.fromarray(rgba_ball()[..., :3]).save(fg / "no_alpha.png")
    plant_truncated(fg / "good.png", fg / "truncated.png")
    (fg / "empty.png").write_bytes(b"")
    plant_bomb_png(fg / "bomb.png")
    (fg / "corrupt.webm").write_bytes(np.random.default_rng(0).bytes(4000))
    write_rgb_mp4(bg / "sea.mp4", np.random.default_rng(1).random((8, 32, 32, 3)), fps=8)

    manifest = build(make_recipe(recipe_config("copy-paste", src=fg, backgrounds=bg, frames=8,
                                               matte_plain_images=False)), out)

    assert manifest.counts == {"copy-paste": 1}
    reasons = skipped_reasons(out)
    assert set(reasons) == {"no_alpha.png", "truncated.png", "empty.png", "bomb.png", "corrupt.webm"}
    assert "no alpha channel" in reasons["no_alpha.png"]
    assert "truncated" in reasons["truncated.png"]
    assert "0 bytes" in reasons["empty.png"]
    assert "decompression bomb" in reasons["bomb.png"]
    assert "not a readable clip" in reasons["corrupt.webm"]


def test_bad_videos_are_skipped(tmp_path):
    src, out = tmp_path / "videos", tmp_path / "out"
    src.mkdir()
    write_rgb_mp4(src / "good.mp4", np.random.default_rng(0).random((6, 32, 32, 3)), fps=8)
    write_rgb_mp4(src / "short.mp4", np.random.default_rng(1).random((2, 32, 32, 3)), fps=8)
    plant_truncated(src / "good.mp4", src / "truncated.mp4")
    (src / "empty.mp4").write_bytes(b"")
    (src / "bombframes").mkdir()
    plant_bomb_png(src / "bombframes" / "0000.png")

    manifest = build(make_recipe(recipe_config("coarse-video", src=src, frames=4)), out)

    assert manifest.counts == {"coarse-video": 1}
    reasons = skipped_reasons(out)
    assert set(reasons) == {"short.mp4", "truncated.mp4", "empty.mp4", "0000.png"}
    assert "fewer than the 4 requested" in reasons["short.mp4"]
    assert "not a readable clip" in reasons["truncated.mp4"]
    assert "0 bytes" in reasons["empty.mp4"]
    assert "decompression bomb" in reasons["0000.png"]


def test_bad_layered_images_are_skipped(tmp_path):
    def layered(name, fg, bg):
        (tmp_path / name).mkdir()
        Image.fromarray(fg).save(tmp_path / name / "fg.png")
        if bg is not None:
            Image.fromarray(bg).save(tmp_path / name / "bg.png")

    layered("good", rgba_ball(24), np.zeros((24, 24, 3), np.uint8))
    layered("mismatched", rgba_ball(24), np.zeros((20, 30, 3), np.uint8))
    layered("opaque", rgba_ball(24)[..., :3], np.zeros((24, 24, 3), np.uint8))
    layered("no_bg", rgba_ball(24), None)
    out = tmp_path.parent / f"{tmp_path.name}-out"

    manifest = build(make_recipe(recipe_config("layered-images", src=tmp_path, frames=2,
                                               matte_composites=False)), out)

    assert manifest.counts == {"layered-images": 1}
    reasons = skipped_reasons(out)
    assert "fg is 24x24 but bg is 30x20" in reasons["mismatched"]
    assert "no alpha channel" in reasons["fg.png"]
    assert "no bg image" in reasons["no_bg"]


def test_a_missing_source_folder_is_a_config_error_not_a_skip(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        build(make_recipe(recipe_config("coarse-video", src=tmp_path / "nowhere")), tmp_path / "out")
