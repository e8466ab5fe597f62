"""The shard format, the manifest, and resumable builds (without Prefect)."""

import json

import numpy as np
import webdataset as wds

from data_recipes import build, iter_samples, make_recipe, read_manifest, recipe_config
from data_recipes.build import plan_chunks, remove_partials, shard_path
from data_recipes.shards import list_shards
from data_recipes.synthetic import SyntheticConfig
from data_recipes.synthetic_sources import write_copy_paste_sources, write_layered_image_sources


def test_stock_webdataset_reads_the_shards(tmp_path):
    build(make_recipe(recipe_config("synthetic", count=5)), tmp_path, chunk_size=2)
    urls = [str(p) for p in list_shards(tmp_path)]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode())
    assert len(samples) == 5
    first = samples[0]
    layers, meta = first["layers.npz"], first["json"]
    assert first["__key__"] == "synthetic-0000000000"
    assert {k: (v.dtype, v.shape) for k, v in layers.items()} == {
        "fg": (np.uint8, (8, 32, 32, 3)),
        "alpha": (np.uint8, (8, 32, 32)),
        "bg": (np.uint8, (8, 32, 32, 3)),
        "blend": (np.uint8, (8, 32, 32, 3)),
    }
    assert set(meta["prompts"]) == {"fg", "bg", "blend"}
    assert (meta["recipe"], meta["fps"], meta["frames"], meta["height"], meta["width"], meta["static"]) == (
        "synthetic", 8.0, 8, 32, 32, False)
    assert "CC0" in meta["licence"] and meta["source"] == "synthetic:seed=0"
    assert meta["attributes"]["fg"]["direction"] in ("left", "right", "up", "down")


def test_library_reader_gives_back_the_layers_losslessly(tmp_path):
    recipe = make_recipe(recipe_config("synthetic", count=2))
    build(recipe, tmp_path)
    read = list(iter_samples(tmp_path))
    made = [s for item in recipe.plan() for s in recipe.make(item)]
    assert [s.key for s in read] == [s.key for s in made]
    for got, want in zip(read, made):
        for name, array in want.clip.to_uint8().items():
            np.testing.assert_array_equal(got.clip.to_uint8()[name], array)  # alpha included: lossless
        assert got.prompts == want.prompts and got.extra == json.loads(json.dumps(want.extra))


def test_manifest_counts_hash_and_skips(tmp_path):
    manifest = build(make_recipe(recipe_config("synthetic", count=7)), tmp_path, chunk_size=3)
    assert manifest == read_manifest(tmp_path)
    assert manifest.counts == {"synthetic": 7} and manifest.total == 7 and manifest.skipped == []
    assert [s.name for s in manifest.shards] == ["synthetic-000000.tar", "synthetic-000001.tar", "synthetic-000002.tar"]
    # shards are byte-for-byte reproducible, so the content hash is too
    again = build(make_recipe(recipe_config("synthetic", count=7)), tmp_path / "again", chunk_size=3)
    assert again.content_hash == manifest.content_hash


def test_the_same_inputs_in_another_folder_build_the_same_shards(tmp_path):
    hashes = []
    for place in ("here", "elsewhere/deeper"):
        root = tmp_path / place
        fg_dir, bg_dir = write_copy_paste_sources(root / "sources", count=3, shape=SyntheticConfig(count=1))
        images = write_layered_image_sources(root / "sources" / "images", count=2, shape=SyntheticConfig(count=1))
        built = [build(make_recipe(recipe_config("copy-paste", src=fg_dir, backgrounds=bg_dir, frames=8,
                                                 height=32, width=32, per_foreground=2)), root / "copy-paste"),
                 build(make_recipe(recipe_config("layered-images", src=images, frames=8, height=32, width=32)),
                       root / "layered-images"),
                 build(make_recipe(recipe_config("frozen", src=root / "copy-paste")), root / "frozen")]
        hashes.append([manifest.content_hash for manifest in built])
        assert [manifest.total for manifest in built] == [6, 2, 6]

    assert hashes[0] == hashes[1]  # keys, random trajectories and recorded sources name inputs by their folder
    (sample, *_) = iter_samples(tmp_path / "here" / "copy-paste")
    assert sample.source.startswith("fg=fg-00000.png; bg=bg-0000") and "/" not in sample.source


def test_rerun_after_an_interrupted_build_rebuilds_only_what_is_missing(tmp_path):
    recipe = make_recipe(recipe_config("synthetic", count=9))
    build(recipe, tmp_path, chunk_size=3)
    kept = shard_path(tmp_path, "synthetic", 0).stat().st_mtime_ns
    # what a kill leaves behind: a hidden partial shard, a shard without its report, a missing shard
    (tmp_path / ".synthetic-000001.tar.1a2b3c4d.partial").write_bytes(b"half a tar")
    shard_path(tmp_path, "synthetic", 1).with_name("synthetic-000001.report.json").unlink()
    shard_path(tmp_path, "synthetic", 2).unlink()

    manifest = build(recipe, tmp_path, chunk_size=3)

    assert shard_path(tmp_path, "synthetic", 0).stat().st_mtime_ns == kept
    assert not list(tmp_path.glob(".*"))
    keys = [s.key for s in iter_samples(tmp_path)]
    assert len(keys) == len(set(keys)) == 9 == manifest.total


def test_a_smaller_rebuild_removes_stale_shards(tmp_path):
    build(make_recipe(recipe_config("synthetic", count=6)), tmp_path, chunk_size=2)
    manifest = build(make_recipe(recipe_config("synthetic", count=3)), tmp_path, chunk_size=2)
    assert [p.name for p in list_shards(tmp_path)] == ["synthetic-000000.tar", "synthetic-000001.tar"]
    assert manifest.total == 3 and len(list(iter_samples(tmp_path))) == 3


def test_chunks_follow_the_plan_order():
    recipe = make_recipe(recipe_config("synthetic", count=5))
    assert [c.items for c in plan_chunks(recipe, 2)] == [("0", "1"), ("2", "3"), ("4",)]


def test_remove_partials_touches_only_its_recipe(tmp_path):
    mine, other = tmp_path / ".synthetic-000003.tar.abcd.partial", tmp_path / ".frozen-000000.tar.abcd.partial"
    mine.write_bytes(b""), other.write_bytes(b"")
    assert remove_partials(tmp_path, "synthetic") == [mine]
    assert other.exists()


def test_a_source_edited_in_place_is_built_again_and_an_untouched_one_is_kept(tmp_path):
    images = write_layered_image_sources(tmp_path / "images", count=2, shape=SyntheticConfig(count=1))
    recipe = make_recipe(recipe_config("layered-images", src=images, frames=4, height=32, width=32))
    first = build(recipe, tmp_path / "shards")
    kept = shard_path(tmp_path / "shards", "layered-images", 0).stat().st_mtime_ns
    assert build(recipe, tmp_path / "shards") == first
    assert shard_path(tmp_path / "shards", "layered-images", 0).stat().st_mtime_ns == kept

    (images / "image-00000" / "fg.png").write_bytes((images / "image-00001" / "fg.png").read_bytes())  # same name
    rebuilt = build(recipe, tmp_path / "shards")

    assert rebuilt.content_hash != first.content_hash
    assert rebuilt.content_hash == build(recipe, tmp_path / "fresh").content_hash
