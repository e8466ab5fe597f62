"""The training flow's own data: every recipe on synthetic sources, built into one folder."""

from data_recipes import read_manifest
from data_recipes.training_data import build_training_data
from layerflow_model.config import ClipConfig
from layerflow_model.train_config import AutoData

CLIP = ClipConfig(num_frames=4, height=32, width=32)


def test_a_rerun_with_fewer_clips_builds_what_a_fresh_folder_would(tmp_path):
    smaller = AutoData(synthetic_count=2, coarse_count=1, frozen_count=2, static_count=2, copy_paste_count=2)
    build_training_data(tmp_path / "reused", smaller.model_copy(update={
        "coarse_count": 2, "frozen_count": 4, "static_count": 4, "copy_paste_count": 4}), CLIP)

    build_training_data(tmp_path / "reused", smaller, CLIP)
    build_training_data(tmp_path / "fresh", smaller, CLIP)

    for name in ("synthetic", "coarse", "copy-paste", "frozen", "layered-images"):
        reused, fresh = read_manifest(tmp_path / "reused" / name), read_manifest(tmp_path / "fresh" / name)
        assert reused.content_hash == fresh.content_hash, name
    assert sorted(p.name for p in (tmp_path / "reused" / "sources" / "foregrounds").glob("*.png")) == [
        "fg-00000.png", "fg-00001.png"]
