"""The synthetic layered world: exact layers, captions from attributes, seeds split train/eval."""

import numpy as np
import pytest
from pydantic import ValidationError

from data_recipes.synthetic import (
    BG_MOTIONS,
    DIRECTIONS,
    FG_COLOURS,
    PATTERNS,
    SHAPES,
    TRAIN_SEED_LIMIT,
    SyntheticConfig,
    SyntheticRecipe,
    attributes_from_json,
    describe,
    render,
    seed_split,
    synthetic_sample,
)
from layerflow_model.clip import composite


def test_default_clip_is_32x32x8_with_exact_layers():
    sample = synthetic_sample(7, SyntheticConfig(count=1))
    clip = sample.clip
    assert clip.fg.shape == (8, 32, 32, 3) and clip.alpha.shape == (8, 32, 32)
    np.testing.assert_allclose(clip.blend, composite(clip.fg, clip.alpha, clip.bg), atol=1e-6)
    for layer in (clip.fg, clip.alpha, clip.bg, clip.blend):
        assert layer.dtype == np.float32 and layer.min() >= 0 and layer.max() <= 1
    assert sample.key == "synthetic-0000000007" and sample.static is False and sample.fps == 8


def test_same_seed_same_clip_other_seed_other_clip():
    config = SyntheticConfig(count=1)
    first, again, other = (synthetic_sample(s, config) for s in (3, 3, 4))
    np.testing.assert_array_equal(first.clip.blend, again.clip.blend)
    assert first.prompts == again.prompts
    assert not np.array_equal(first.clip.blend, other.clip.blend)


def test_size_and_length_are_configurable():
    clip = synthetic_sample(1, SyntheticConfig(count=1, frames=12, height=24, width=40)).clip
    assert clip.blend.shape == (12, 24, 40, 3)


def test_edges_are_soft_and_some_objects_translucent():
    config = SyntheticConfig(count=40)
    samples = [synthetic_sample(s, config) for s in range(40)]
    for sample in samples:
        alpha = sample.clip.alpha
        assert ((alpha > 0.05) & (alpha < 0.95)).any(), "every object has a soft edge"
    translucent = [s for s in samples if s.extra["attributes"]["fg"]["opacity"] < 1]
    assert translucent and all(s.clip.alpha.max() < 1 for s in translucent)
    assert all("translucent" in s.prompts.fg for s in translucent)


def test_captions_come_from_the_recorded_attributes():
    sample = synthetic_sample(11, SyntheticConfig(count=1))
    fg, bg = attributes_from_json(sample.extra["attributes"])
    assert fg.colour in FG_COLOURS and fg.shape in SHAPES and fg.direction in DIRECTIONS
    assert bg.pattern in PATTERNS and bg.motion in BG_MOTIONS
    assert f"{fg.colour} {fg.shape} moving {fg.direction}" in sample.prompts.fg
    assert f"{bg.colours[0]} and {bg.colours[1]} {bg.pattern}" in sample.prompts.bg
    assert sample.prompts.blend == f"{sample.prompts.fg}, in front of {sample.prompts.bg}"
    assert describe(fg, bg) == sample.prompts
    # the attributes alone rebuild the exact clip: an evaluation oracle can rely on them
    np.testing.assert_array_equal(render(fg, bg, 8, 32, 32).blend, sample.clip.blend)


def test_the_object_starts_moving_in_its_named_direction():
    config = SyntheticConfig(count=60)
    ys, xs = np.mgrid[0:32, 0:32]
    for seed in range(60):
        sample = synthetic_sample(seed, config)
        alpha = sample.clip.alpha[:2]
        centre = np.stack([(alpha * xs).sum((1, 2)), (alpha * ys).sum((1, 2))], 1) / alpha.sum((1, 2))[:, None]
        dx, dy = DIRECTIONS[sample.extra["attributes"]["fg"]["direction"]]
        assert (centre[1] - centre[0]) @ np.array([dx, dy]) > 0, sample.prompts.fg


def test_moving_backgrounds_move_and_still_ones_do_not():
    config = SyntheticConfig(count=30)
    for seed in range(30):
        sample = synthetic_sample(seed, config)
        moved = np.abs(sample.clip.bg[-1] - sample.clip.bg[0]).mean()
        if sample.extra["attributes"]["bg"]["motion"] == "still":
            assert moved == 0
        else:
            assert "drifting" in sample.prompts.bg


def test_training_and_evaluation_seeds_never_overlap():
    assert seed_split(TRAIN_SEED_LIMIT - 1) == "train" and seed_split(TRAIN_SEED_LIMIT) == "eval"
    SyntheticConfig(seed=TRAIN_SEED_LIMIT, count=5, split="eval")
    with pytest.raises(ValidationError, match="not all train seeds"):
        SyntheticConfig(seed=TRAIN_SEED_LIMIT - 2, count=5)
    with pytest.raises(ValidationError, match="not all eval seeds"):
        SyntheticConfig(seed=0, count=5, split="eval")


def test_recipe_plans_one_item_per_seed():
    recipe = SyntheticRecipe(SyntheticConfig(seed=10, count=3))
    assert recipe.plan() == ["10", "11", "12"]
    (sample,) = recipe.make("11")
    assert sample.extra["seed"] == 11 and sample.extra["split"] == "train"
