"""Frozen clips for the motion-LoRA stage: one random frame of a sample, repeated."""

import numpy as np

from data_recipes import build, iter_samples, make_recipe, recipe_config
from data_recipes.frozen import freeze


def test_freeze_repeats_one_frame_of_every_layer():
    (sample,) = make_recipe(recipe_config("synthetic", count=1)).make("0")
    frozen = freeze(sample, np.random.default_rng(0))
    frame = frozen.extra["frozen_frame"]
    for name in ("fg", "alpha", "bg", "blend"):
        layer = getattr(frozen.clip, name)
        assert layer.shape == getattr(sample.clip, name).shape
        assert all(np.array_equal(f, getattr(sample.clip, name)[frame]) for f in layer)
    assert frozen.static and frozen.recipe == "frozen" and frozen.key == "synthetic-0000000000-frozen"
    assert frozen.prompts == sample.prompts and frozen.extra["derived_from"]["recipe"] == "synthetic"


def test_frozen_recipe_turns_a_shard_folder_into_frozen_shards(tmp_path):
    build(make_recipe(recipe_config("synthetic", count=4)), tmp_path / "moving", chunk_size=2)

    manifest = build(make_recipe(recipe_config("frozen", src=tmp_path / "moving")), tmp_path / "frozen")

    assert manifest.counts == {"frozen": 4}
    samples = list(iter_samples(tmp_path / "frozen"))
    assert all(s.static and np.array_equal(s.clip.blend[0], s.clip.blend[-1]) for s in samples)
    assert "attributes" in samples[0].extra  # the source's json travels along


def test_a_source_shard_rebuilt_under_the_same_name_is_frozen_again(tmp_path):
    build(make_recipe(recipe_config("synthetic", count=2)), tmp_path / "moving")
    frozen = make_recipe(recipe_config("frozen", src=tmp_path / "moving"))
    build(frozen, tmp_path / "frozen")

    build(make_recipe(recipe_config("synthetic", seed=10, count=2)), tmp_path / "moving")  # synthetic-000000.tar again
    build(frozen, tmp_path / "frozen")

    keys = [s.extra["derived_from"]["key"] for s in iter_samples(tmp_path / "frozen")]
    assert keys == [s.key for s in iter_samples(tmp_path / "moving")] == ["synthetic-0000000010", "synthetic-0000000011"]
