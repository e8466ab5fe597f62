"""Layered images: RGBA fg + bg folders and matted plain composites become static clips."""

import json

import numpy as np
from PIL import Image

from data_recipes.layered_images import LayeredImagesConfig, LayeredImagesRecipe
from layerflow_model.clip import composite


def make_layered_folder(folder, size=(48, 64)):
    """folder/fg.png (RGBA square, half-transparent border), folder/bg.jpg, folder/prompts.json."""
    folder.mkdir()
    h, w = size
    fg = np.zeros((h, w, 4), np.uint8)
    fg[10:30, 20:44] = (40, 200, 90, 255)
    fg[8:10, 20:44, :3], fg[8:10, 20:44, 3] = (40, 200, 90), 128
    Image.fromarray(fg).save(folder / "fg.png")
    Image.fromarray(np.full((h, w, 3), (30, 60, 160), np.uint8)).save(folder / "bg.jpg", quality=95)
    (folder / "prompts.json").write_text(json.dumps({"fg": "a green box", "bg": "a blue wall"}))


def test_layered_folder_and_plain_composite_become_static_clips(tmp_path, layerflow_samples):
    make_layered_folder(tmp_path / "box")
    Image.open(layerflow_samples / "DAVIS/480p/goat/bl/0000.png").resize((96, 64)).save(tmp_path / "goat.jpg")
    (tmp_path / "goat.txt").write_text("a goat on a rocky hill")
    recipe = LayeredImagesRecipe(LayeredImagesConfig(src=tmp_path, frames=4, height=32, width=48))
    assert [p.rsplit("/", 1)[-1] for p in recipe.plan()] == ["box", "goat.jpg"]

    box, goat = [s for item in recipe.plan() for s in recipe.make(item)]

    for sample in (box, goat):
        assert sample.static and sample.clip.blend.shape == (4, 32, 48, 3)
        for layer in (sample.clip.fg, sample.clip.alpha, sample.clip.bg, sample.clip.blend):
            assert np.array_equal(layer[0], layer[-1]), "the frame is repeated"
    assert box.prompts.fg == "a green box" and box.prompts.blend == "a green box, in front of a blue wall."
    assert box.extra["origin"] == "layered"
    np.testing.assert_allclose(box.clip.blend, composite(box.clip.fg, box.clip.alpha, box.clip.bg), atol=2e-3)
    assert goat.prompts.blend == "a goat on a rocky hill" and goat.extra["origin"] == "matted composite"
    assert goat.clip.alpha.max() > 0.9 and goat.clip.alpha.min() < 0.1
    behind = goat.clip.alpha[0] > 0.5  # the inpainted background differs from the photo where the goat was
    assert np.abs(goat.clip.bg[0][behind] - goat.clip.blend[0][behind]).mean() > 0.02
