"""benchmarks/layer_gap.py: a model's generated layers beside the best one answer their prompts allow."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from layerflow_model import build_pipeline, get_config

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "layer_gap.py"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "tiny"
    build_pipeline(get_config("tiny"), seed=0).save_pretrained(folder)  # 4 frames of 16x16
    return folder


def test_each_generated_layer_is_scored_beside_the_floor_and_the_mean_of_draws(tiny_model):
    command = [sys.executable, str(BENCHMARK), "--model", str(tiny_model), "--count", "1", "--draws", "2",
               "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    assert (result["clips"], result["scored"], result["draws"], result["held_out_draws"]) == (1, 1, 2, 2)
    assert result["steps"] == 2  # the tiny model's own sampler setting
    assert set(result["layers"]) == {"alpha", "fg", "bg", "blend"}
    for scores in result["layers"].values():
        # A mean of n draws misses the held-out draws by their spread plus 1/n of it: the floor lies below.
        assert 0 < scores["floor"] < scores["mean_of_draws"]["held_out"] < scores["one_draw"]["held_out"]
        assert math.isfinite(scores["learnt"])
        answers = ("mean_of_draws", "still_mean", "prompt_blind", "one_draw", "model")
        for errors in (scores[answer] for answer in answers):
            assert all(math.isfinite(v) and 0 <= v <= 1 for v in errors.values())
    assert "| bg |" in done.stdout and "model over the floor" in done.stdout


def test_clips_whose_prompts_are_too_rare_are_skipped_and_named(tiny_model):
    command = [sys.executable, str(BENCHMARK), "--model", str(tiny_model), "--count", "1", "--draws", "2",
               "--max-worlds", "1", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "skipped synthetic-" in done.stderr and "raise --max-worlds" in done.stderr


def test_a_fill_is_scored_on_the_layers_it_makes_from_its_prompt(tiny_model):
    command = [sys.executable, str(BENCHMARK), "--model", str(tiny_model), "--task", "fill_foreground",
               "--count", "1", "--draws", "2", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    assert result["task"] == "fill_foreground"
    assert set(result["layers"]) == {"alpha", "fg"}  # the background is given
