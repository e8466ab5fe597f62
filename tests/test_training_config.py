"""Training configs fail at start, naming the field: unknown keys, wrong types, impossible combinations."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from flows.train import earlier_stages
from layerflow_model.config import with_overrides
from layerflow_model.train_config import (
    PROFILES,
    StageConfig,
    get_profile,
    load_model_config,
    load_training_config,
    read_stage_config,
    read_train_config,
)

STAGE = dict(model="tiny", data=[Path("shards")], out_dir=Path("out"), steps=4, lr=1e-3)


def write_config(tmp_path, **changes) -> Path:
    config = {"model": "tiny", "base": {"steps": 4, "lr": 1e-3}, "motion": {"steps": 4, "lr": 1e-3},
              "content": {"steps": 4, "lr": 1e-3}} | changes
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_profiles_are_complete_training_configs():
    assert set(PROFILES) == {"quick", "default", "gpu"}
    quick = get_profile("quick")
    assert quick.model == "small" and quick.base.steps > 0 and quick.content.static_batch_fraction == 0.5
    assert get_profile("gpu").device == "cuda" and get_profile("gpu").model == get_profile("default").model
    with pytest.raises(ValueError, match="profile: unknown 'fast'; choose one of"):
        get_profile("fast")


def test_a_config_file_reads_into_the_same_model(tmp_path):
    config = read_train_config(write_config(tmp_path, seed=3, base={"steps": 10, "lr": 1e-4, "batch_size": 2}))
    assert config.seed == 3 and config.base.batch_size == 2 and config.motion.steps == 4


@pytest.mark.parametrize("changes, field", [
    ({"base": {"steps": 4, "lr": 1e-3, "learning_rate": 1}}, "base.learning_rate"),  # unknown key
    ({"motion": {"steps": "many", "lr": 1e-3}}, "motion.steps"),  # wrong type
    ({"content": {"steps": 4, "lr": -1}}, "content.lr"),  # out of range
    ({"model": "huge"}, "model"),  # unknown preset
    ({"device": "tpu"}, "device"),
    ({"content": {"steps": 4, "lr": 1e-3, "trainable_every_n_blocks": 6}}, "content.trainable_every_n_blocks"),
    ({"base": {"steps": 4, "lr": 1e-3, "trainable": "prompt_readout"}}, "base.trainable"),  # needs a finished model
])
def test_bad_training_configs_name_the_field(tmp_path, changes, field):
    with pytest.raises(ValidationError, match=field.replace(".", r"\.")):
        read_train_config(write_config(tmp_path, **changes))


def test_impossible_stage_combinations_name_the_field():
    with pytest.raises(ValidationError, match="motion_adapter: the content stage needs the motion stage's adapter"):
        StageConfig(stage="content", init_from=Path("base/model"), **STAGE)
    with pytest.raises(ValidationError, match="init_from: stage 'motion' trains an adapter on a base model"):
        StageConfig(stage="motion", **STAGE)
    with pytest.raises(ValidationError, match="motion_adapter: only the content stage"):
        StageConfig(stage="base", motion_adapter=Path("motion/adapter"), **STAGE)
    with pytest.raises(ValidationError, match="data: stage 'base' needs at least one shard folder"):
        StageConfig(stage="base", **(STAGE | {"data": []}))


def test_a_prompt_readout_stage_trains_on_a_finished_model_with_a_readout_in_its_config():
    config = read_stage_config(Path(__file__).parents[1] / "configs" / "readout-on-shipped.yaml", out_dir=Path("out"))
    assert config.trainable == "prompt_readout" and config.init_from == Path("runs/readout/start")
    with pytest.raises(ValidationError, match="trainable: 'prompt_readout' is a base stage on a finished model"):
        StageConfig(stage="base", trainable="prompt_readout", **STAGE)
    with pytest.raises(ValidationError, match="prompt_readout_rank > 0"):  # `tiny` has none
        StageConfig(stage="base", trainable="prompt_readout", init_from=Path("finished/model"), **STAGE)


def test_the_gpu_sampler_stage_trains_the_shipped_model_on_as_an_encoded_noise_sampler(monkeypatch):
    monkeypatch.chdir(Path(__file__).parents[1])  # its paths are the repository root's, as its commands run
    config = read_stage_config(Path("configs/encoded-noise-gpu.yaml"), out_dir=Path("out"))
    assert config.device == "cuda" and config.init_from == Path("layerflow_model/pretrained/small")
    model = load_model_config(config.model)
    assert model.objective.loss == "encoded_noise" and model.objective.noise == "per_clip"
    assert model.transformer == load_model_config("small").transformer


def test_starting_at_content_needs_a_finished_motion_stage(tmp_path):
    with pytest.raises(ValueError, match="from_stage: starting at 'content' needs a finished 'base' stage"):
        earlier_stages(tmp_path, "content")


def test_exactly_one_of_profile_and_config_file(tmp_path):
    with pytest.raises(ValueError, match="exactly one of a profile"):
        load_training_config("quick", write_config(tmp_path))
    with pytest.raises(ValueError, match="exactly one of a profile"):
        load_training_config(None, None)


def test_a_seed_repeats_a_recipe_with_other_training_randomness():
    repeat = load_training_config("default", None, seed=1)  # layerflow pipeline --profile default --seed 1
    assert repeat.seed == 1 and repeat.model_dump() == get_profile("default").model_dump() | {"seed": 1}
    assert load_training_config("default", None) == get_profile("default")  # no seed: the profile's own
    with pytest.raises(ValidationError, match="seed"):
        load_training_config("quick", None, seed=-1)


def test_a_stage_on_a_model_file_is_keyed_by_what_the_file_holds(tmp_path):
    tiny = load_model_config("tiny")
    first, copy = tmp_path / "model.json", tmp_path / "elsewhere.json"
    first.write_text(with_overrides(tiny, {"objective.prediction": "sample"}).model_dump_json())
    copy.write_text(first.read_text())
    on_file = StageConfig(stage="base", **STAGE | {"model": str(first)})
    before = on_file.identity()
    assert before["model"]["objective"]["prediction"] == "sample"
    assert StageConfig(stage="base", **STAGE | {"model": str(copy)}).identity() == before  # the same config elsewhere
    first.write_text(with_overrides(tiny, {"objective.prediction": "velocity"}).model_dump_json())
    assert on_file.identity() != before  # edited: a rerun trains anew instead of skipping to the old model
    assert StageConfig(stage="base", **STAGE).identity()["model"] == "tiny"  # presets keep the keys they had


def test_a_model_file_can_name_a_preset_and_the_fields_it_changes(tmp_path):
    changes = tmp_path / "encoded-noise.yaml"
    changes.write_text(yaml.safe_dump({"preset": "small", "set": {"objective.loss": "encoded_noise",
                                                                  "objective.noise": "per_clip"}}))
    assert load_model_config(str(changes)) == with_overrides(
        load_model_config("small"), {"objective.loss": "encoded_noise", "objective.noise": "per_clip"})
    assert StageConfig(stage="base", **STAGE | {"model": str(changes)}).identity()["model"]["objective"]["loss"] == (
        "encoded_noise")
    for wrong, field in (({"preset": "big"}, "preset"), ({"preset": "small", "changes": {}}, "changes"),
                         ({"preset": "small", "set": {"objective.los": 1}}, "objective.los")):
        changes.write_text(yaml.safe_dump(wrong))
        with pytest.raises(ValidationError, match=field):
            StageConfig(stage="base", **STAGE | {"model": str(changes)})
