"""A training run killed with SIGKILL mid-stage resumes from its last checkpoint, losing at most one interval."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from data_recipes.build import build
from data_recipes.synthetic import SyntheticConfig, SyntheticRecipe
from layerflow_model.checkpoint import latest_checkpoint
from layerflow_model.train_config import StageConfig

REPO = Path(__file__).resolve().parents[1]
STEP_LINE = re.compile(r"^step (\d+) loss=", re.MULTILINE)


def start_training(config_file: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "layerflow_model.training", str(config_file)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_a_killed_stage_resumes_from_its_last_checkpoint(tmp_path):
    build(SyntheticRecipe(SyntheticConfig(count=4, frames=4, height=16, width=16)), tmp_path / "data")
    config = StageConfig(stage="base", model="tiny", device="cpu", data=[tmp_path / "data"], out_dir=tmp_path / "run",
                         steps=60, batch_size=2, lr=1e-3, checkpoint_every=5, eval_batches=0, preview_count=0)
    config_file = tmp_path / "stage.json"
    config_file.write_text(config.model_dump_json())

    first = start_training(config_file)
    deadline = time.monotonic() + 120
    while latest_checkpoint(config.out_dir) is None and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    log = first.communicate()[0]
    assert first.returncode == -signal.SIGKILL
    saved, _ = latest_checkpoint(config.out_dir)
    last_done = int(STEP_LINE.findall(log)[-1])
    assert 0 < saved < config.steps and last_done - saved <= config.checkpoint_every

    second = start_training(config_file)
    log = second.communicate(timeout=300)[0]
    assert second.returncode == 0, log
    assert f"resumed from step-{saved:08d} at step {saved}" in log
    steps = [int(s) for s in STEP_LINE.findall(log)]
    assert steps[0] == saved + 1 and steps[-1] == config.steps  # the counter continues, not restarts
    assert (config.out_dir / "model" / "transformer" / "config.json").is_file()
