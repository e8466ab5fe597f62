"""The training flow on a local Prefect server: the MLflow run tree, skipping finished stages, failures, the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer
import yaml
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType
from typer.testing import CliRunner

from flows.cli_train import train
from flows.pipeline import pipeline_flow
from flows.train import train_flow, train_stage_flow
from layerflow_model.completion import keyed_stage_config, keyed_standalone_stage
from layerflow_model.config import with_overrides
from layerflow_model.train_config import STAGES, load_model_config, load_training_config, read_stage_config
from tasks.tracking import EXPERIMENT, STAGE_TAG

DEVICE_TRAINING = Path(__file__).resolve().parents[1] / "benchmarks" / "device_training.py"
# Runs a script as __main__ with Prefect and MLflow unimportable, as on a GPU machine that has neither.
WITHOUT_ORCHESTRATION = ("import runpy, sys; sys.modules.update(prefect=None, mlflow=None); "
                         "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")

SETTINGS = {"steps": 3, "batch_size": 2, "lr": 1e-3, "checkpoint_every": 2, "sample_steps": 2, "preview_count": 1}


def write_config(folder: Path, **changes) -> Path:
    config = {"model": "tiny", "device": "cpu", "base": SETTINGS, "motion": SETTINGS, "content": SETTINGS,
              "auto_data": {"synthetic_count": 6, "frozen_count": 4, "static_count": 4, "copy_paste_count": 4}} | changes
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_base_stage(folder: Path, data: Path) -> Path:
    """A stage config file of the tiny model's base stage on ``data``."""
    path = folder / "base.yaml"
    stage = {"stage": "base", "model": "tiny", "device": "cpu", "data": [str(data)], **SETTINGS}
    path.write_text(yaml.safe_dump(stage))
    return path


def run_device_training(*args: str) -> subprocess.CompletedProcess:
    """benchmarks/device_training.py with ``args``, Prefect and MLflow unimportable, as on a bare GPU machine."""
    command = [sys.executable, "-c", WITHOUT_ORCHESTRATION, str(DEVICE_TRAINING), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def runs_of(out: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client, client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.fixture(scope="module")
def trained(prefect_server, tmp_path_factory):
    """One flow run of all three stages on auto-built data; (out folder, results)."""
    out = tmp_path_factory.mktemp("train")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        results = train_flow(out=out, config_file=write_config(out))
    return out, results


def test_the_flow_logs_a_parent_run_with_one_child_run_per_stage(trained):
    out, results = trained
    client, runs = runs_of(out)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {r.data.tags[STAGE_TAG]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"base", "motion", "content"}
    assert parent.info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in children.values())
    assert parent.data.params["base.steps"] == "3" and parent.data.params["model_config.clip.height"] == "16"
    assert {"data.synthetic.content_hash", "data.frozen.content_hash", "data.copy-paste.content_hash"} <= set(parent.data.tags)
    for stage, run in children.items():
        assert run.data.params["stage"] == stage and run.data.tags["git_commit"]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3]
        assert {"lr", "samples_per_s", "eval_loss"} <= set(run.data.metrics)
        logged = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
        assert logged == {"samples/sample-0.gif", "samples/sample-0.webm"}
    assert {a.path for a in client.list_artifacts(children["motion"].info.run_id, "adapter")} == {
        "adapter/pytorch_lora_weights.safetensors"}
    content = children["content"].data.metrics
    assert {"motion_check.static_change", "motion_check.free_change"} <= set(content)
    assert (results["content"].model_dir / "transformer" / "config.json").is_file()


def test_prefect_shows_how_far_each_stage_has_trained(trained):
    out, _ = trained
    with get_client(sync_client=True) as client:
        progress = client.read_artifacts(artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["progress"])))
    percent_done = {a.description.split(":")[0]: a.data for a in progress if str(out) in (a.description or "")}
    assert percent_done == {"base": 100.0, "motion": 100.0, "content": 100.0}


def test_a_rerun_skips_finished_stages_and_from_stage_reuses_earlier_ones(trained, monkeypatch):
    out, first = trained
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    again = train_flow(out=out, config_file=write_config(out))
    assert again == first
    changed = dict(SETTINGS, steps=2)
    later = train_flow(out=out, config_file=write_config(out, content=changed), from_stage="content")
    assert later["base"] == first["base"] and later["motion"] == first["motion"]
    assert later["content"].out_dir != first["content"].out_dir and later["content"].final_step == 2
    _, runs = runs_of(out)
    assert sorted(r.data.tags[STAGE_TAG] for r in runs if STAGE_TAG in r.data.tags) == ["base", "content", "content", "motion"]


def test_device_training_finds_the_flows_stages_without_prefect_or_mlflow(trained):
    out, first = trained
    done = run_device_training("--config", str(write_config(out)), "--out", str(out))
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    keys = {line["step"]: line["key"] for line in lines if line.get("step") in STAGES}
    assert keys == {stage: first[stage].out_dir.name for stage in STAGES}  # same folders: nothing retrained
    assert lines[-1]["model"] == str(first["content"].model_dir)
    assert set(lines[-1]["seconds"]) == {"data", *STAGES}


def test_device_training_trains_one_stage_from_its_own_file_without_prefect_or_mlflow(trained, tmp_path, monkeypatch):
    out, _ = trained
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    stage_file = write_base_stage(tmp_path, out / "data" / "synthetic")
    done = run_device_training("--stage", str(stage_file), "--out", str(tmp_path / "runs"))
    assert "stage base finished at step 3" in done.stderr
    line = json.loads(done.stdout.splitlines()[-1])
    assert line["final_step"] == SETTINGS["steps"] and line["key"] == Path(line["model"]).parent.name
    assert not (tmp_path / "runs" / "mlflow.db").exists()  # nothing tracked
    # keyed as layerflow train-stage keys it: the flow finds the finished run and skips it
    assert train_stage_flow(config_file=stage_file, out=tmp_path / "runs").model_dir == Path(line["model"])


def test_a_cuda_run_on_a_machine_without_a_gpu_stops_before_building_data(prefect_server, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI, whatever machine runs the tests
    with pytest.raises(ValueError, match="device: cuda requested but no GPU is available"):
        train_flow(out=tmp_path / "train", config_file=write_config(tmp_path, device="cuda"))
    with pytest.raises(ValueError, match="device: cuda:1 requested"):
        pipeline_flow(profile="quick", out=tmp_path / "pipeline", device="cuda:1")
    assert not (tmp_path / "train").exists() and not (tmp_path / "pipeline").exists()


def test_a_failing_stage_is_marked_failed(trained, monkeypatch):
    out, first = trained
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    moving_only = [str(out / "data" / "synthetic")]  # the content stage also needs static images
    config = write_config(out, content=dict(SETTINGS, data=moving_only))
    with pytest.raises(ValueError, match="data: the content stage needs static images"):
        train_flow(out=out, config_file=config, from_stage="content")
    _, runs = runs_of(out)
    newest_content = [r for r in runs if r.data.tags.get(STAGE_TAG) == "content"][-1]
    assert newest_content.info.status == "FAILED"
    parent = next(r for r in runs if r.info.run_id == newest_content.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FAILED"


def test_one_stage_from_its_own_file_trains_a_readout_on_a_finished_model_keyed_by_its_start(trained, tmp_path,
                                                                                              monkeypatch):
    out, first = trained
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    model = with_overrides(load_model_config("tiny"), {"transformer.prompt_readout_rank": 2,
                                                       "objective.prediction": "sample"})
    (tmp_path / "model.json").write_text(model.model_dump_json())
    stage_file = tmp_path / "readout.yaml"
    stage_file.write_text(yaml.safe_dump({
        "stage": "base", "model": str(tmp_path / "model.json"), "device": "cpu", "trainable": "prompt_readout",
        "init_from": str(first["content"].model_dir), "data": [str(out / "data" / "synthetic")], **SETTINGS}))

    readout = train_stage_flow(config_file=stage_file, out=tmp_path / "runs")
    assert readout.out_dir.parent == (tmp_path / "runs" / "base").resolve()
    assert (readout.model_dir / "transformer" / "config.json").is_file()
    client, runs = runs_of(tmp_path / "runs")
    (run,) = runs
    assert run.info.status == "FINISHED" and run.data.params["trainable"] == "prompt_readout"
    assert run.data.params["model_config.transformer.prompt_readout_rank"] == "2"  # what the model file holds
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3]
    assert train_stage_flow(config_file=stage_file, out=tmp_path / "runs") == readout  # finished: skipped
    assert len(runs_of(tmp_path / "runs")[1]) == 1
    from_base = read_stage_config(stage_file, out_dir=tmp_path, init_from=first["base"].model_dir)
    assert keyed_standalone_stage(from_base, tmp_path)[0] != readout.out_dir.name  # other weights: another run


def test_runs_in_two_output_folders_share_one_latent_cache(trained, tmp_path, monkeypatch):
    out, first = trained
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    stage_file = write_base_stage(tmp_path, out / "data" / "synthetic")
    shared = tmp_path / "cache"

    first_run = train_stage_flow(config_file=stage_file, out=tmp_path / "a", cache_dir=shared)
    (cache_file,) = shared.glob("*/cache.safetensors")
    built = cache_file.stat().st_mtime_ns
    second_run = train_stage_flow(config_file=stage_file, out=tmp_path / "b", cache_dir=shared)

    assert second_run.out_dir.parent == (tmp_path / "b" / "base").resolve()  # trained again, in its own folder
    assert list(shared.glob("*/cache.safetensors")) == [cache_file]  # on the cache the first run built
    assert cache_file.stat().st_mtime_ns == built
    assert not (tmp_path / "a" / "cache").exists() and not (tmp_path / "b" / "cache").exists()
    assert first_run.out_dir.name == second_run.out_dir.name  # same config and data: same key
    # `layerflow train --cache` gives every stage of the chain the same folder
    chain = load_training_config(None, write_config(tmp_path))
    _, base = keyed_stage_config(chain, "base", tmp_path / "c", [out / "data" / "synthetic"], {}, shared)
    assert base.resolved_cache_dir == shared and base.out_dir.parent == tmp_path / "c" / "base"


def test_the_cli_explains_itself_and_rejects_ambiguous_input(tmp_path):
    app = typer.Typer()
    app.command()(train)
    app.command("other")(lambda: None)  # a group, as on the layerflow app
    runner = CliRunner()
    help_text = runner.invoke(app, ["train", "--help"]).output
    assert "--profile" in help_text and "--from-stage" in help_text and "quick" in help_text
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--profile", "quick", "--config", "x.yaml"])
    assert result.exit_code != 0 and "exactly one of --config and --profile" in result.output
