"""benchmarks/prompt_probe.py: a ridge regression from the pooled prompts to the layers, scored like a model."""

import json
import math
import subprocess
import sys
from pathlib import Path

from layerflow_model import build_pipeline, get_config

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "prompt_probe.py"


def test_the_probe_is_fitted_on_training_clips_and_scored_on_held_out_ones(tmp_path):
    model = tmp_path / "tiny"
    build_pipeline(get_config("tiny"), seed=0).save_pretrained(model)  # its encoder and 4 frames of 16x16
    command = [sys.executable, str(BENCHMARK), "--model", str(model), "--train-clips", "20", "--alphas", "1", "10",
               "--count", "1", "--draws", "2", "--ranks", "1", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    sweep, result, rank_one = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert set(sweep["alpha_sweep"]) == {"1.0", "10.0"} and sweep["alpha"] in (1.0, 10.0)
    assert (result["train_clips"], result["clips"], result["scored"]) == (20, 1, 1)
    assert set(result["layers"]) == {"alpha", "fg", "bg", "blend"}
    assert all(math.isfinite(v["learnt"]) and v["floor"] > 0 for v in result["layers"].values())
    assert 0 <= result["oracle_accuracy"] <= 1
    assert set(result["attributes"]) == {"colour", "shape", "direction", "pattern"}
    assert result["composite_mae"] >= 0 and result["travel_px"] >= 0
    # The same scores for the coefficients cut to rank 1: what a readout through one number keeps.
    assert rank_one["rank"] == 1 and set(rank_one["layers"]) == set(result["layers"])
    assert 0 <= rank_one["oracle_accuracy"] <= 1 and "| rank |" in done.stdout


def test_a_holdout_that_leaves_nothing_to_pick_the_strength_is_refused():
    done = subprocess.run([sys.executable, str(BENCHMARK), "--train-clips", "5", "--holdout", "0.1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--holdout" in done.stderr


def test_a_rank_below_one_is_refused():
    done = subprocess.run([sys.executable, str(BENCHMARK), "--ranks", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--ranks must be at least 1" in done.stderr
