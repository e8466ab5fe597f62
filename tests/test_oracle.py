"""The prompt-adherence oracle reads the synthetic world's attributes back from layers."""

import numpy as np
import pytest

from data_recipes.oracle import (
    SyntheticOracle,
    accuracy,
    matte_travel,
    read_colour,
    read_direction,
    read_shape,
    truth_of,
)
from data_recipes.synthetic import FG_COLOURS, SyntheticConfig, synthetic_sample
from layerflow_model import LayeredClip


def test_held_out_ground_truth_reads_back_right():
    config = SyntheticConfig(split="eval", seed=1_000_000, count=24, frames=8, height=32, width=32)
    samples = [synthetic_sample(seed, config) for seed in range(1_000_000, 1_000_024)]
    oracle = SyntheticOracle(frames=8, height=32, width=32)
    readings = [oracle.read(s.clip) for s in samples]
    scores = accuracy(readings, [truth_of(s.extra["attributes"]) for s in samples])
    assert scores["colour"] == scores["shape"] == scores["direction"] == 1.0
    assert scores["pattern"] >= 0.9  # stripes and waves are sometimes confused


def test_a_hand_drawn_square_moving_right():
    alpha = np.zeros((4, 32, 32), dtype=np.float32)
    for t in range(4):
        alpha[t, 10:20, 4 + 3 * t:14 + 3 * t] = 0.6  # translucent: opacity does not matter
    fg = np.zeros((4, 32, 32, 3), dtype=np.float32)
    fg[alpha > 0] = np.array(FG_COLOURS["purple"]) * 0.85  # shaded darker: hue is what counts
    assert read_colour(fg, alpha) == "purple"
    assert read_shape(alpha) == "square"
    assert read_direction(alpha) == "right"
    assert read_direction(alpha[::-1]) == "left"
    assert matte_travel(alpha) == pytest.approx(9.0)  # 3 pixels a frame, 3 frame steps


def test_empty_or_still_layers_read_as_none_and_count_as_wrong():
    empty = np.zeros((3, 16, 16), dtype=np.float32)
    assert read_colour(np.zeros((3, 16, 16, 3)), empty) is None and read_shape(empty) is None
    still = empty.copy()
    still[:, 4:8, 4:8] = 1.0
    assert read_direction(still) is None
    assert matte_travel(still) == 0.0 and np.isnan(matte_travel(empty))
    truth = {"colour": "red", "shape": "ring", "direction": "up", "pattern": "dots"}
    reading = {"colour": "red", "shape": None, "direction": "up", "pattern": "checks"}
    assert accuracy([reading, truth], [truth, truth]) == {"colour": 1.0, "shape": 0.5, "direction": 1.0, "pattern": 0.5}
    with pytest.raises(ValueError, match="one reading per truth"):
        accuracy([reading], [])


def test_reading_needs_fg_alpha_and_bg():
    oracle = SyntheticOracle(frames=2, height=16, width=16, reference_count=10)
    with pytest.raises(ValueError, match="reading attributes back needs layers"):
        oracle.read(LayeredClip(blend=np.zeros((2, 16, 16, 3))))
