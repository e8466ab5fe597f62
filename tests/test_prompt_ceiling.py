"""benchmarks/prompt_ceiling.py: what a layer made from its prompt alone can score against one held-out draw."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "prompt_ceiling.py"


def test_prompt_ceiling_scores_a_sampler_and_a_mean_for_each_metric():
    command = [sys.executable, str(BENCHMARK), "--clips", "1", "--draws", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert (result["clips"], result["scored"], result["skipped"], result["draws"]) == (1, 1, 0, 2)
    assert 0 <= result["alpha_iou"]["sampler"] <= 1 and 0 <= result["alpha_iou"]["mean"] <= 1
    assert 0 < result["bg_psnr"]["sampler"] < 60 and 0 < result["bg_psnr"]["mean"] < 60  # other draws, not the truth
    assert result["alpha_area_ratio"]["sampler"] > 0 and result["alpha_area_ratio"]["mean"] >= 0
    assert result["travel_px"]["truth"] > 0 and result["travel_px"]["sampler"] > 0  # the synthetic objects move
    # The oracle reads the prompted attributes back from each draw and from the mean layers.
    assert set(result["oracle"]) == {"sampler", "mean"}
    for shares in result["oracle"].values():
        assert set(shares) == {"colour", "shape", "direction", "pattern"} and all(0 <= v <= 1 for v in shares.values())
    assert 0 <= result["oracle_accuracy"]["mean"] <= 1


def test_prompt_ceiling_says_what_to_raise_when_no_prompt_is_drawn_twice():
    done = subprocess.run([sys.executable, str(BENCHMARK), "--clips", "1", "--draws", "2", "--max-worlds", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "raise --max-worlds" in done.stderr
