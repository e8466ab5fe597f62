"""benchmarks/quality_vs_steps.py: a quality-against-steps curve from a few training steps of the tiny model."""

import json
import math
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "quality_vs_steps.py"
METRICS = {"alpha_iou", "alpha_mad", "bg_psnr", "fg_psnr", "composite_mae", "oracle_accuracy"}
CURVE_KEYS = {"step", "seconds"} | METRICS | {f"ema_{metric}" for metric in METRICS}  # ema_: the averaged weights


def test_quality_benchmark_prints_a_curve_and_plots_it(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, str(BENCHMARK), "--config", "tiny", "--steps", "4", "--eval-every", "2",
               "--eval-clips", "2", "--train-clips", "8", "--batch-size", "2", "--ema-decay", "0.9", "--out", str(out),
               "--set", "objective.prediction=sample", "--set", "objective.one_step_fraction=0.5",
               "--set", "sampler.decompose_steps=1", "--task-mixture", "decompose=3", "--task-mixture", "generate=0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result = lines[-1]
    assert [point["step"] for point in result["curve"]] == [2, 4]
    for point in result["curve"]:
        assert set(point) == CURVE_KEYS
        assert all(math.isfinite(value) for value in point.values())
    assert [line["step"] for line in lines if "step" in line] == [2, 4]  # one line per evaluation
    assert set(result["baselines"]) == {"median", "classical", "ground_truth"}
    assert result["model_config"]["objective"]["one_step_fraction"] == 0.5
    assert result["stage"]["task_mixture"] == {"generate": 0, "decompose": 3, "fill_background": 1, "fill_foreground": 1}
    assert result["stage"]["ema_decay"] == 0.9 and result["stage"]["steps"] == 4
    assert (out / "curve.png").stat().st_size > 0
    assert (out / "mlflow.db").is_file()


def test_a_bad_override_names_the_field(tmp_path):
    command = [sys.executable, str(BENCHMARK), "--config", "tiny", "--steps", "2", "--eval-every", "1",
               "--out", str(tmp_path), "--set", "objective.predicton=sample"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "objective.predicton" in done.stderr
