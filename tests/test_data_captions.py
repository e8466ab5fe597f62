"""Where captions come from: sidecar JSON or text, the official meta*.json, image text chunks."""

import json

from PIL import Image, PngImagePlugin

from data_recipes.captions import Captions, find_captions, join_captions


def test_sidecars_meta_and_image_text(tmp_path, layerflow_samples):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.json").write_text(json.dumps({"fg_prompt": " a dog ", "bl_prompt": "a dog in a park"}))
    (tmp_path / "b.mp4").write_bytes(b"")
    (tmp_path / "b.txt").write_text("a cat\n")
    info = PngImagePlugin.PngInfo()
    info.add_text("caption", "a red kite")
    Image.new("RGBA", (4, 4)).save(tmp_path / "c.png", pnginfo=info)

    assert find_captions(tmp_path / "a.mp4") == Captions(fg="a dog", blend="a dog in a park")
    assert find_captions(tmp_path / "b.mp4").describing("bg") == "a cat"
    assert find_captions(tmp_path / "c.png").describing("fg") == "a red kite"
    assert find_captions(tmp_path / "nothing.mp4") == Captions()
    balloon = find_captions(layerflow_samples / "Backgrounds_vid_train/balloon")  # meta_test.json beside it
    assert balloon.bg.startswith("A tranquil maritime scene")


def test_blend_caption_joins_foreground_and_background():
    assert join_captions("A red kite.", "The blue sky.") == "A red kite, in front of the blue sky."
    assert join_captions("", "the sea") == "the sea"
