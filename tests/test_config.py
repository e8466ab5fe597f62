"""Named model configs: the registry and validation that names the offending field."""

import pytest
from pydantic import ValidationError

from layerflow_model import MODEL_PRESETS, build_pipeline, get_config
from layerflow_model.config import with_overrides


def test_registry_has_the_three_named_configs():
    assert {"tiny", "small", "cogvideox-2b"} <= set(MODEL_PRESETS)
    paper = get_config("cogvideox-2b")
    assert (paper.transformer.num_layers, paper.transformer.inner_dim) == (30, 1920)
    assert (paper.clip.num_frames, paper.clip.height, paper.clip.width) == (16, 480, 720)
    assert paper.text_encoder.tokens_per_prompt == 226


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown model config 'huge'.*'cogvideox-2b', 'small', 'tiny'"):
        get_config("huge")


def test_unknown_keys_and_wrong_types_name_the_field():
    with pytest.raises(ValidationError, match="clip.num_framez"):
        get_config("tiny", clip={"num_framez": 4, "height": 16, "width": 16})
    with pytest.raises(ValidationError, match="clip.height"):
        get_config("tiny", clip={"num_frames": 4, "height": "tall", "width": 16})


def test_dotted_overrides_change_nested_fields_and_name_bad_ones():
    config = with_overrides(get_config("small"), {"objective.prediction": "sample", "transformer.num_layers": 4,
                                                  "sampler.decompose_steps": 1})
    assert (config.objective.prediction, config.transformer.num_layers, config.sampler.decompose_steps) == ("sample", 4, 1)
    assert config.transformer.num_attention_heads == get_config("small").transformer.num_attention_heads
    with pytest.raises(ValidationError, match="objective.predicton"):
        with_overrides(config, {"objective.predicton": "sample"})
    with pytest.raises(ValidationError, match="transformer.num_layers"):
        with_overrides(config, {"transformer.num_layers": 0})
    with pytest.raises(ValueError, match="name.x: name is a value"):
        with_overrides(config, {"name.x": 1})


def test_impossible_sizes_are_rejected():
    with pytest.raises(ValidationError, match=r"clip.height=20 must be a multiple of the pixel_unshuffle codec's "
                                              r"factor x transformer.patch_size = 8"):
        get_config("tiny", clip={"num_frames": 4, "height": 20, "width": 16})


def test_full_size_config_needs_a_local_folder():
    with pytest.raises(ValueError, match="pretrained_path"):
        build_pipeline(get_config("cogvideox-2b"))


def test_a_stock_checkpoint_cannot_take_the_given_layers_as_channels(tmp_path):
    with pytest.raises(ValidationError, match="transformer.given_in_channels"):
        with_overrides(get_config("cogvideox-2b"), {"transformer.given_in_channels": True, "pretrained_path": str(tmp_path)})


def test_a_prompt_readout_needs_a_clean_layer_prediction():
    with_overrides(get_config("small"), {"transformer.prompt_readout_rank": 16})  # small predicts the clean layers
    with pytest.raises(ValidationError, match="transformer.prompt_readout_rank.*'velocity'"):
        with_overrides(get_config("tiny"), {"transformer.prompt_readout_rank": 16})


def test_a_noise_code_conditioning_needs_per_clip_noise():
    with_overrides(get_config("small"), {"transformer.noise_code_conditioning": True, "objective.noise": "per_clip"})
    with pytest.raises(ValidationError, match="transformer.noise_code_conditioning.*'per_pixel'"):
        with_overrides(get_config("small"), {"transformer.noise_code_conditioning": True})
