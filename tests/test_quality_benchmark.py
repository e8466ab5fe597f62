"""benchmarks/quality_vs_steps.py: a quality-against-steps curve from a few training steps of the tiny model;
benchmarks/checkpoint_clips.py: the per-clip scores behind one of its checkpoints."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "quality_vs_steps.py"
CHECKPOINT_CLIPS = BENCHMARK.with_name("checkpoint_clips.py")
GENERATION_SAMPLER = BENCHMARK.with_name("generation_sampler.py")
METRICS = {"alpha_iou", "alpha_mad", "bg_psnr", "fg_psnr", "composite_mae", "oracle_accuracy"}
CURVE_KEYS = {"step", "seconds"} | METRICS | {f"ema_{metric}" for metric in METRICS}  # ema_: the averaged weights


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 4-step run of the tiny model scored at steps 2 and 4 on 2 held-out clips, keeping only the last checkpoint:
    (its --out folder, its process)."""
    out = tmp_path_factory.mktemp("quality") / "run"
    command = [sys.executable, str(BENCHMARK), "--config", "tiny", "--steps", "4", "--eval-every", "2",
               "--eval-clips", "2", "--train-clips", "8", "--batch-size", "2", "--ema-decay", "0.9",
               "--keep-checkpoints", "1", "--out", str(out),
               "--set", "objective.prediction=sample", "--set", "objective.one_step_fraction=0.5",
               "--set", "sampler.decompose_steps=1", "--task-mixture", "decompose=3", "--task-mixture", "generate=0"]
    return out, subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_quality_benchmark_prints_a_curve_and_plots_it(tiny_run):
    out, done = tiny_run
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


def test_checkpoint_clips_scores_each_held_out_clip(tiny_run):
    out, _ = tiny_run
    command = [sys.executable, str(CHECKPOINT_CLIPS), str(out), "--step", "4", "--average", "--eval-clips", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    *clips, summary = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(clips) == 2 and all(0 <= clip["alpha_iou"] <= 1 for clip in clips)
    assert summary["step"] == 4 and summary["weights"] == "ema.safetensors" and summary["clips"] == 2
    assert summary["non_empty_clips"] == sum(not clip["empty_true_mask"] for clip in clips)
    assert math.isfinite(summary["mean"]["bg_psnr"])


def test_checkpoint_clips_names_the_steps_it_kept(tiny_run):
    out, _ = tiny_run
    done = subprocess.run([sys.executable, str(CHECKPOINT_CLIPS), str(out), "--step", "3"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "kept: [4]" in done.stderr


def test_generation_sampler_scores_a_checkpoint_of_the_run(tiny_run):
    out, _ = tiny_run
    command = [sys.executable, str(GENERATION_SAMPLER), "--run", str(out), "--step", "4", "--count", "2", "--steps", "2",
               "--guidance", "1", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    header, row = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert header["model"].endswith("trainable.safetensors (step 4)")
    assert (row["steps"], row["guidance"]) == (2, 1.0) and 0 <= row["oracle_accuracy"] <= 1


def test_a_bad_override_names_the_field(tmp_path):
    command = [sys.executable, str(BENCHMARK), "--config", "tiny", "--steps", "2", "--eval-every", "1",
               "--out", str(tmp_path), "--set", "objective.predicton=sample"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "objective.predicton" in done.stderr


def test_a_bad_stage_setting_names_the_field_before_building_shards(tmp_path):
    command = [sys.executable, str(BENCHMARK), "--config", "tiny", "--steps", "2", "--eval-every", "1",
               "--keep-checkpoints", "0", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "keep_checkpoints" in done.stderr
    assert not (tmp_path / "data").exists()


def test_a_stopped_run_resumes_from_its_newest_checkpoint(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, str(BENCHMARK), "--config", "tiny", "--steps", "6", "--eval-every", "2",
               "--eval-clips", "2", "--train-clips", "8", "--batch-size", "2", "--out", str(out)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as first:
        for line in first.stdout:
            if line.startswith('{"step": 2'):  # the first checkpoint is scored: stop the run as a lost machine would
                first.kill()
                break
    assert not (out / "curve.json").exists()

    again = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--resume to continue it" in again.stderr
    changed = subprocess.run([*command, "--resume", "--lr", "1e-3"], capture_output=True, text=True, timeout=60)
    assert changed.returncode == 2 and "stage.lr" in changed.stderr
    model_file = (out / "model_config.json").read_text()
    other_model = subprocess.run([*command, "--resume", "--set", "objective.shift=3"], capture_output=True, text=True,
                                 timeout=60)
    assert other_model.returncode == 2 and "model.objective.shift" in other_model.stderr
    assert (out / "model_config.json").read_text() == model_file  # the refused run's model is not written over it
    progress = json.loads((out / "progress.json").read_text())
    retired = json.loads(json.dumps(progress))
    retired["settings"]["model"]["transformer"]["retired_option"] = True  # as saved with a field since dropped
    (out / "progress.json").write_text(json.dumps(retired))
    unreadable = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=60)
    assert unreadable.returncode == 2 and "cannot read" in unreadable.stderr and "retired_option" in unreadable.stderr
    del progress["settings"]["model"]["transformer"]["noise_code_conditioning"]  # as saved before the field existed
    (out / "progress.json").write_text(json.dumps(progress))

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout.splitlines()[-1])
    assert [point["step"] for point in result["curve"]] == [2, 4, 6]
    assert json.loads((out / "curve.json").read_text())["curve"] == result["curve"]

    # one MLflow run, continued: every training step logged once, those redone after the checkpoint included
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs(client.get_experiment_by_name("layerflow").experiment_id)
    assert run.info.status == "FINISHED"
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(metric.step for metric in losses) == [1, 2, 3, 4, 5, 6]
