"""The evaluation flow on a fresh tiny model: every method scored, an MLflow eval run, Prefect artifacts.

An untrained model's scores mean nothing; what is checked is the shape of the results, that
defined values are finite, and where everything is reported.
"""

import json
import math

import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from data_recipes.synthetic import held_out_samples
from flows.evaluate import EvalConfig, evaluate_flow
from layerflow_model import build_pipeline, get_config
from layerflow_model.metrics import METRIC_NAMES
from layerflow_model.scoring import score_folders
from tasks.eval_tasks import write_hardest_clips
from tasks.tracking import open_run, tracking_for

METHODS = ["decompose", "fill_background", "fill_foreground", "generate", "median", "classical"]
ORACLE = ["oracle_colour", "oracle_direction", "oracle_pattern", "oracle_shape"]


@pytest.fixture(scope="module")
def evaluation(prefect_server, tmp_path_factory):
    """Evaluate a fresh tiny model on 2 held-out synthetic clips (1 sampling step), under a parent run."""
    folder = tmp_path_factory.mktemp("eval")
    build_pipeline(get_config("tiny")).save_pretrained(folder / "model")
    tracking = tracking_for(folder / "out")
    parent = open_run(tracking, "pipeline", params={}, tags={"layerflow.stage": "pipeline"})
    config = EvalConfig(model=folder / "model", out=folder / "out", count=2, steps=1)
    rows = evaluate_flow(config, parent_run_id=parent)
    return config, rows, tracking, parent


def test_every_method_gets_every_metric_and_the_oracle(evaluation):
    _, rows, _, _ = evaluation
    assert [row["method"] for row in rows] == METHODS
    for row in rows:
        assert list(row) == ["method", *METRIC_NAMES, *ORACLE]
        for name in ("alpha_mad", "alpha_iou", "fg_ssim", "bg_ssim", "composite_mae", "warp_error", "dynamic_degree"):
            assert math.isfinite(row[name]), (row["method"], name)
        assert all(0.0 <= row[name] <= 1.0 for name in ORACLE)
    by_method = {row["method"]: row for row in rows}
    assert by_method["fill_background"]["alpha_mad"] == 0.0  # the given alpha comes back exactly
    assert by_method["decompose"]["blend_psnr"] == math.inf  # ... and so does the given blend


def test_the_files_in_the_official_layout_rescore_to_the_same_numbers(evaluation):
    config, rows, _, _ = evaluation
    out = config.out
    rescored = score_folders(out / "predictions" / "median", out / "ground_truth")
    median = next(row for row in rows if row["method"] == "median")
    assert rescored["mean"]["alpha_iou"] == median["alpha_iou"]
    comparison = json.loads((out / "report" / "comparison.json").read_text())
    assert comparison["oracle"]["ground_truth"] == {"colour": 1.0, "shape": 1.0, "direction": 1.0, "pattern": 1.0}
    assert (out / "report" / "plots" / "alpha_iou.png").stat().st_size > 0
    assert (out / "report" / "previews" / "classical.png").stat().st_size > 0


def test_the_report_shows_each_tasks_hardest_clips_beside_their_truth(evaluation):
    config, _, tracking, _ = evaluation
    hardest = json.loads((config.out / "report" / "comparison.json").read_text())["hardest"]
    assert hardest and {row["method"] for row in hardest} <= set(METHODS[:4])  # the model's tasks, not the baselines
    for row in hardest:
        assert (config.out / "report" / row["preview"]).stat().st_size > 0
        assert row["metric"] in ("alpha_iou", "bg_psnr", "composite_mae") and row["prompt"]
    decompose_bg = [row["value"] for row in hardest if (row["method"], row["metric"]) == ("decompose", "bg_psnr")]
    assert decompose_bg == sorted(decompose_bg)  # worst (lowest PSNR) first
    report = (config.out / "report" / "report.md").read_text()
    assert "## Hardest clips" in report and "/previews/hardest/" in report
    [run] = MlflowClient(tracking.uri).search_runs([tracking.experiment_id], "tags.`layerflow.stage` = 'eval'")
    assert MlflowClient(tracking.uri).list_artifacts(run.info.run_id, "previews/hardest")


def test_an_eval_run_nested_under_the_parent(evaluation):
    _, rows, tracking, parent = evaluation
    client = MlflowClient(tracking.uri)
    [run] = client.search_runs([tracking.experiment_id], filter_string="tags.`layerflow.stage` = 'eval'")
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.params["steps"] == "1" and run.data.params["count"] == "2"
    assert run.data.metrics["median.alpha_iou"] == next(r["alpha_iou"] for r in rows if r["method"] == "median")
    assert "decompose.blend_psnr" not in run.data.metrics  # inf is not a metric value; the table keeps it
    logged = {a.path for folder in ("plots", "previews", "scores") for a in client.list_artifacts(run.info.run_id, folder)}
    assert {"plots/alpha_iou.png", "previews/generate.png", "scores/classical.json"} <= logged
    assert "report.md" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_prefect_gets_the_table_and_a_report_with_one_plot_per_metric(evaluation):
    _, rows, _, _ = evaluation
    with get_client(sync_client=True) as client:
        keys = ArtifactFilterKey(any_=["layerflow-eval-table", "layerflow-eval-report"])
        artifacts = {a.key: a for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=keys))}
    table = artifacts["layerflow-eval-table"].data
    table = json.loads(table) if isinstance(table, str) else table
    assert [row["method"] for row in table] == METHODS
    report = artifacts["layerflow-eval-report"].data
    for name in (*METRIC_NAMES, *ORACLE):
        assert f"![{name}](" in report and f"/plots/{name}.png)" in report


def test_hardest_clip_previews_are_written_once_per_clip_and_replace_an_earlier_evaluations(tmp_path):
    samples = held_out_samples(2, 4, 16, 16)
    hard, easy = (s.key for s in samples)
    scores = {"decompose": {"per_sequence": {hard: {"alpha_iou": 0.5, "bg_psnr": 20.0, "composite_mae": 0.1},
                                             easy: {"alpha_iou": 0.9, "bg_psnr": 30.0, "composite_mae": 0.01}}}}
    stale = tmp_path / "previews" / "hardest" / "decompose" / "from-an-earlier-model.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")

    rows = write_hardest_clips.fn(tmp_path / "previews", samples, {"decompose": [s.clip for s in samples]}, scores, 1)
    assert [(row["metric"], row["sequence"]) for row in rows] == [("alpha_iou", hard), ("bg_psnr", hard),
                                                                  ("composite_mae", hard)]
    assert {row["preview"] for row in rows} == {f"previews/hardest/decompose/{hard}.png"}
    assert [p.name for p in stale.parent.iterdir()] == [f"{hard}.png"]
