"""`layerflow pipeline --profile quick`: data, three stages and evaluation in one run tree; a rerun resumes."""

import time

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
    out = tmp_path / "quick"
    result = runner.invoke(app, ["pipeline", "--profile", "quick", "--out", str(out)])
    assert result.exit_code == 0, result.output

    # One parent run; base, motion, content and eval nested under it, all finished.
    runs = runs_by_name(out)
    parent = next(r for r in runs if r.data.tags.get("layerflow.stage") == "pipeline")
    children = {r.data.tags["layerflow.stage"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"base", "motion", "content", "eval"}
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert "motion_check.ratio" in children["content"].data.metrics

    # The published model serves a task; the report is written.
    pipe = LayerFlowPipeline.from_pretrained(out / "model")
    pipe.set_progress_bar_config(disable=True)
    clip = pipe(LayerPrompts("a red circle", "blue stripes", "a red circle over blue stripes"),
                num_inference_steps=2, generator=torch.Generator().manual_seed(0)).clips[0]
    assert clip.alpha.shape == (8, 32, 32)
    assert (out / "eval" / "report" / "report.md").is_file()

    # A rerun trains nothing again: no new stage runs, only a new pipeline and eval run.
    start = time.monotonic()
    result = runner.invoke(app, ["pipeline", "--profile", "quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    stages = [r.data.tags.get("layerflow.stage") for r in runs_by_name(out)]
    assert sorted(stages) == sorted(["pipeline"] * 2 + ["eval"] * 2 + ["base", "motion", "content"])
    assert time.monotonic() - start < 120
