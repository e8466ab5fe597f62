"""The official LayerFlow layout in (DAVIS sample) and out (export of shards)."""

import json

import numpy as np

from data_recipes import build, export_shards, iter_samples, make_recipe, recipe_config
from data_recipes.layerflow_folder_source import LayerflowFolderConfig, LayerflowFolderRecipe
from layerflow_model.clip import to_uint8
from layerflow_model.layerflow_folder import read_layerflow_folder


def test_davis_sequences_become_samples_with_their_prompts(layerflow_samples):
    recipe = LayerflowFolderRecipe(LayerflowFolderConfig(src=layerflow_samples / "DAVIS/480p", frames=4,
                                                         height=48, width=72))
    assert [p.rsplit("/", 1)[-1] for p in recipe.plan()] == ["goat", "lucia", "mallard-water", "paragliding"]

    samples = [s for item in recipe.plan() for s in recipe.make(item)]

    assert len(samples) == 4
    paragliding = samples[-1]
    assert paragliding.prompts.fg.startswith("A paraglider, dressed in a dark suit")
    assert paragliding.prompts.bg and paragliding.prompts.blend
    for sample in samples:
        clip = sample.clip
        assert clip.blend.shape == (4, 48, 72, 3) and clip.alpha.shape == (4, 48, 72)
        assert 0 < clip.alpha.mean() < 0.5 and sample.fps == 8 and not sample.static


def test_shards_export_to_the_official_layout_and_read_back(tmp_path):
    shards, exported = tmp_path / "shards", tmp_path / "exported"
    build(make_recipe(recipe_config("synthetic", count=3)), shards)

    keys = export_shards(shards, exported)

    assert keys == ["synthetic-0000000000", "synthetic-0000000001", "synthetic-0000000002"]
    read_back = {name: (clip, prompts) for name, clip, prompts in read_layerflow_folder(exported)}
    for sample in iter_samples(shards):
        clip, prompts = read_back[sample.key]
        assert prompts == sample.prompts
        np.testing.assert_array_equal(to_uint8(clip.alpha), to_uint8(sample.clip.alpha))  # lossless
        np.testing.assert_allclose(clip.blend, sample.clip.blend, atol=1 / 255)
        visible = sample.clip.alpha > 0.5  # fg goes through the official grey matte: exact where opaque enough
        np.testing.assert_allclose(clip.fg[visible], sample.clip.fg[visible], atol=3 / 255)
        attributes = json.loads((exported / sample.key / "sample.json").read_text())["attributes"]
        assert attributes == json.loads(json.dumps(sample.extra["attributes"]))
