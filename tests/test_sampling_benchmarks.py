"""Sampling benchmarks on a tiny model: windows, mirrored passes, compositing refinement, full-size output."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_recipes.build import build
from data_recipes.synthetic import SyntheticConfig, SyntheticRecipe
from layerflow_model import build_pipeline, get_config
from layerflow_model.config import with_overrides
from layerflow_model.train_config import StageConfig
from layerflow_model.training import train_stage

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "tiny"
    build_pipeline(get_config("tiny"), seed=0).save_pretrained(folder)  # 4 frames of 16x16
    return folder


def test_windowed_decomposition_is_scored_for_each_overlap_against_the_first_window(tiny_model, tmp_path):
    command = [sys.executable, str(BENCHMARKS / "windowed_decompose.py"), "--model", str(tiny_model), "--count", "2", "--frames", "6",
               "--overlaps", "0", "2", "--threads", "1", "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "out" / "windowed.json").read_text())
    assert (record["count"], record["frames"], record["window"]) == (2, 6, 4)
    assert [row["setting"] for row in record["rows"]] == ["first window only", "overlap 0", "overlap 2"]
    for row in record["rows"]:
        assert 0 <= row["alpha_iou"] <= 1 and math.isfinite(row["bg_psnr"]) and row["seconds_per_clip"] > 0
    assert "| overlap 2 |" in (tmp_path / "out" / "windowed.md").read_text()


def test_mirrored_passes_are_scored_against_one_pass_for_each_task_given_layers(tiny_model):
    command = [sys.executable, str(BENCHMARKS / "mirrored_passes.py"), "--model", str(tiny_model), "--count", "2",
               "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(row["task"], row["passes"]) for row in rows] == [
        ("decompose", 1), ("decompose", 4), ("fill_background", 1), ("fill_background", 4),
        ("fill_foreground", 1), ("fill_foreground", 4)]
    assert all(0 <= row["alpha_iou"] <= 1 and row["seconds"] > 0 for row in rows)


def test_compositing_refinement_is_scored_against_the_unrefined_layers_for_each_setting(tiny_model):
    command = [sys.executable, str(BENCHMARKS / "compositing_refinement.py"), "--model", str(tiny_model), "--count", "2",
               "--prior-weights", "0.1", "1", "--bands", "0.05,0.95", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    header, *rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert header["clips"] == 2 and header["first_seed"] == 1_010_000
    settings = [(row["prior_weight"], row["band"]) for row in rows]
    assert settings == [(None, None), (0.1, [0.05, 0.95]), (1.0, [0.05, 0.95])]  # unrefined first
    assert all(0 <= row["alpha_iou"] <= 1 and math.isfinite(row["alpha_mad"]) for row in rows)
    assert "| 0.1 | 0.05-0.95 |" in done.stdout


def test_full_size_decomposition_is_scored_resized_and_re_solved(tiny_model):
    command = [sys.executable, str(BENCHMARKS / "full_size_decompose.py"), "--model", str(tiny_model), "--count", "2",
               "--size", "32", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [row["setting"] for row in rows] == ["model size (16x16)", "full size (32x32), resized",
                                                "full size (32x32), resized and re-solved"]
    assert all(0 <= row["alpha_iou"] <= 1 and math.isfinite(row["alpha_mad"]) for row in rows)


def test_generation_is_scored_at_each_step_count_and_guidance_scale(tiny_model, tmp_path):
    command = [sys.executable, str(BENCHMARKS / "generation_sampler.py"), "--model", str(tiny_model), "--count", "2",
               "--steps", "1", "3", "--guidance", "1", "4", "--threads", "1", "--previews", str(tmp_path),
               "--preview-count", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    header, *rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert header["clips"] == 2 and header["ground_truth_accuracy"]["shape"] == 1.0  # the oracle reads the truth back
    assert header["ground_truth_travel_px"] > 0  # the synthetic objects move
    assert [(row["steps"], row["guidance"]) for row in rows] == [(1, 1.0), (1, 4.0), (3, 1.0), (3, 4.0)]
    for row in rows:
        assert 0 <= row["composite_mae"] <= 1 and 0 <= row["oracle_accuracy"] <= 1 and row["seconds_per_clip"] > 0
        assert row["alpha_area_ratio"] >= 0 and row["travel_px"] >= 0
        assert set(row["attributes"]) == {"colour", "shape", "direction", "pattern"}
    assert "| 3 | 4 |" in done.stdout
    assert sorted(path.parent.name for path in tmp_path.glob("*/*.png")) == [
        "steps1-guidance1", "steps1-guidance4", "steps3-guidance1", "steps3-guidance4"]  # one clip beside its truth each


def test_generation_sampler_scores_training_clips_below_the_held_out_seeds(tiny_model):
    command = [sys.executable, str(BENCHMARKS / "generation_sampler.py"), "--model", str(tiny_model), "--count", "1",
               "--first-seed", "0", "--steps", "1", "--guidance", "1", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    header, row = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert header["split"] == "train" and header["first_seed"] == 0 and row["steps"] == 1
    crossing = subprocess.run([sys.executable, str(BENCHMARKS / "generation_sampler.py"), "--model", str(tiny_model),
                               "--count", "2", "--first-seed", "999999"], capture_output=True, text=True, timeout=60)
    assert crossing.returncode == 2
    assert "--first-seed, --count: seeds 999999..1000000 are not all train" in crossing.stderr


def test_generation_sampler_can_start_each_clip_from_its_own_encoded_noise(tiny_model, tmp_path):
    encoded = tmp_path / "encoded"
    build_pipeline(with_overrides(get_config("tiny"), {
        "objective.prediction": "sample", "objective.one_step_fraction": 1.0, "objective.noise": "per_clip",
        "objective.loss": "encoded_noise"}), seed=0).save_pretrained(encoded)
    command = [sys.executable, str(BENCHMARKS / "generation_sampler.py"), "--count", "2", "--steps", "1",
               "--guidance", "1", "--threads", "1", "--encoded-noise"]
    done = subprocess.run([*command, "--model", str(encoded)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    header, row = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert header["clips"] == 2 and 0 <= row["oracle_accuracy"] <= 1
    refused = subprocess.run([*command, "--model", str(tiny_model)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--encoded-noise: this model has no noise encoder" in refused.stderr


def test_generation_sampler_scores_a_checkpoint_of_a_stage_trained_on_from_another_model(tiny_model, tmp_path):
    data = tmp_path / "data"
    build(SyntheticRecipe(SyntheticConfig(count=4, frames=4, height=16, width=16)), data)
    encoded = with_overrides(get_config("tiny"), {  # the started-from model has no noise encoder: the stage adds one
        "objective.prediction": "sample", "objective.one_step_fraction": 1.0, "objective.loss_space": "sample",
        "objective.loss": "encoded_noise", "objective.noise": "per_clip"})
    (tmp_path / "encoded.json").write_text(encoded.model_dump_json())
    stage = StageConfig(stage="base", model=str(tmp_path / "encoded.json"), init_from=tiny_model, data=[data],
                        out_dir=tmp_path / "base", steps=2, batch_size=2, lr=1e-3, checkpoint_every=1, device="cpu")
    train_stage(stage)

    command = [sys.executable, str(BENCHMARKS / "generation_sampler.py"), "--run", str(stage.out_dir), "--step", "1",
               "--count", "2", "--steps", "1", "--guidance", "1", "--threads", "1", "--encoded-noise"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    header, row = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert header["model"].endswith("trainable.safetensors (step 1)") and 0 <= row["oracle_accuracy"] <= 1
    motion = shutil.copytree(stage.out_dir, tmp_path / "motion")  # a stage folder that names another stage
    (motion / "stage_config.json").write_text(stage.model_copy(update={"stage": "motion"}).model_dump_json())
    refused = subprocess.run([*command[:2], "--run", str(motion)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "a motion stage, whose checkpoints hold its adapter alone" in refused.stderr


def test_generation_sampler_names_what_step_picks(tiny_model):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "generation_sampler.py"), "--model", str(tiny_model),
                           "--step", "4"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--step and --average pick a checkpoint of --run" in done.stderr


def test_denoising_error_is_printed_per_noise_level_beside_copying_the_noisy_input(tiny_model):
    command = [sys.executable, str(BENCHMARKS / "denoising_error.py"), "--model", str(tiny_model), "--count", "2",
               "--sigmas", "0.01", "1", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    header, *levels = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert header["clips"] == 2 and [level["sigma"] for level in levels] == [0.01, 1.0]
    for level in levels:
        assert set(level["model_mse"]) == set(level["copy_mse"]) == {"fg", "alpha", "bg", "blend", "all"}
    assert levels[0]["copy_mse"]["all"] < 1e-3 < levels[1]["copy_mse"]["all"]  # at sigma 0.01 the input is nearly clean
