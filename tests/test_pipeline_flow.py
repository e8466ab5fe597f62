"""`layerflow pipeline --profile quick`: data, three stages and evaluation in one run tree; a rerun resumes."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from flows.cli import app
from layerflow_model import LayerFlowPipeline, LayerPrompts

runner = CliRunner(env={"COLUMNS": "300"})


def runs_by_name(out):
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("layerflow")
    return client.search_runs([experiment.experiment_id])


@pytest.mark.timeout(1800)  # about 5 minutes on 2 idle cores; much longer when the machine is shared
def test_quick_pipeline_end_to_end_then_a_rerun_skips_finished_work(prefect_server, tmp_path):
    out, cache = tmp_path / "quick", tmp_path / "latent-cache"  # the cache outside the run folder, to share
    command = ["pipeline", "--profile", "quick", "--out", str(out), "--seed", "3", "--cache", str(cache)]
    result = runner.invoke(app, command)  # the profile with training seed 3
    assert result.exit_code == 0, result.output
    assert list(cache.glob("*/cache.safetensors")) and not (out / "cache").exists()

    # One parent run; base, motion, content and eval nested under it, all finished.
    runs = runs_by_name(out)
    parent = next(r for r in runs if r.data.tags.get("layerflow.stage") == "pipeline")
    children = {r.data.tags["layerflow.stage"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"base", "motion", "content", "eval"}
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert "motion_check.ratio" in children["content"].data.metrics
    assert {children[stage].data.params["seed"] for stage in ("base", "motion", "content")} == {"3"}

    # The published model serves a task; the report is written.
    pipe = LayerFlowPipeline.from_pretrained(out / "model")
    pipe.set_progress_bar_config(disable=True)
    clip = pipe(LayerPrompts("a red circle", "blue stripes", "a red circle over blue stripes"),
                num_inference_steps=2, generator=torch.Generator().manual_seed(0)).clips[0]
    assert clip.alpha.shape == (8, 32, 32)
    assert (out / "eval" / "report" / "report.md").is_file()

    # A rerun trains nothing again: no new stage runs, only a new pipeline and eval run.
    start = time.monotonic()
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    stages = [r.data.tags.get("layerflow.stage") for r in runs_by_name(out)]
    assert sorted(stages) == sorted(["pipeline"] * 2 + ["eval"] * 2 + ["base", "motion", "content"])
    assert time.monotonic() - start < 120


def test_a_terminated_pipeline_stops_its_temporary_prefect_server_and_marks_its_run_failed(tmp_path):
    # No PREFECT_API_URL: the command starts (and must stop) a temporary server of its own, in a fresh
    # PREFECT_HOME, as on a new machine (its first start, with migrations, outlasted Prefect's default 20 s).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"PREFECT_HOME": str(tmp_path / "prefect")}
    out = tmp_path / "quick"
    command = [str(Path(sys.executable).parent / "layerflow"), "pipeline", "--profile", "quick", "--out", str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:  # wait until training starts, on the temporary server, under the MLflow run
        lines.append(line)
        if "subflow run" in line and "for flow 'layerflow-train'" in line:
            break
    else:
        pytest.fail(f"the pipeline ended before training began:\n{''.join(lines)}")
    port = int(re.search(r"Starting temporary server on http://127\.0\.0\.1:(\d+)", "".join(lines)).group(1))
    process.send_signal(signal.SIGTERM)
    output = "".join(lines) + process.communicate(timeout=120)[0]
    assert process.returncode != 0
    assert f"Stopping temporary server on http://127.0.0.1:{port}" in output
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    parent = next(r for r in runs_by_name(out) if r.data.tags.get("layerflow.stage") == "pipeline")
    assert parent.info.status == "FAILED"
