"""The Prefect build flow and the ``layerflow data`` commands, on a real temporary Prefect server."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL
from prefect.states import Failed
from typer.testing import CliRunner

from data_recipes import iter_samples, read_manifest, recipe_config
from flows.build_data import build_data
from flows.cli_data import data_app
from tasks.data_tasks import retry_on_io_error

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("prefect_server")


def shard_task_states(flow_state) -> list[str]:
    """Names of the final states of a flow run's build-shard task runs."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_state.state_details.flow_run_id])))
    return sorted(run.state.name for run in runs if run.name.startswith("build-shard"))


def test_only_io_errors_are_retried():
    assert retry_on_io_error(None, None, Failed(data=OSError("No space left on device")))
    assert not retry_on_io_error(None, None, Failed(data=ValueError("a bug, not bad luck")))


def test_flow_builds_shards_and_a_rerun_comes_from_the_cache(tmp_path):
    config = recipe_config("synthetic", count=6)

    first = build_data(config, str(tmp_path), chunk_size=2, return_state=True)
    (tmp_path / "synthetic-000001.tar").unlink()
    second = build_data(config, str(tmp_path), chunk_size=2, return_state=True)

    assert shard_task_states(first) == ["Completed"] * 3
    assert shard_task_states(second) == ["Cached", "Cached", "Completed"]  # only the missing shard is rebuilt
    assert first.result().content_hash == second.result().content_hash == read_manifest(tmp_path).content_hash


def test_a_killed_build_finishes_on_rerun_with_no_partial_shard_and_no_duplicate(tmp_path):
    out = tmp_path / "shards"
    args = ["build", "synthetic", "--count", "40", "--height", "64", "--width", "64", "--chunk-size", "2",
            "--out", str(out)]
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(REPO)}
    build = subprocess.Popen([sys.executable, "-c", "from flows.cli_data import data_app; data_app()", *args],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.report.json")) and time.monotonic() < deadline and build.poll() is None:
        time.sleep(0.05)
    build.kill()
    build.wait()
    assert len(list(out.glob("*.report.json"))) < 20, "the build was killed mid-way"

    result = CliRunner().invoke(data_app, args)

    assert result.exit_code == 0, result.output
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no partial shard left"
    keys = [s.key for s in iter_samples(out)]
    assert len(keys) == len(set(keys)) == 40 == read_manifest(out).total


def test_cli_exit_status_follows_what_was_written(tmp_path):
    src = tmp_path / "layered"
    for name, bg_size in (("good", (16, 16)), ("mismatched", (12, 20))):
        (src / name).mkdir(parents=True)
        Image.fromarray(np.full((16, 16, 4), 200, np.uint8)).save(src / name / "fg.png")
        Image.fromarray(np.zeros(bg_size + (3,), np.uint8)).save(src / name / "bg.png")
    runner = CliRunner()

    ok = runner.invoke(data_app, ["build", "layered-images", "--src", str(src), "--out", str(tmp_path / "a"),
                                  "--frames", "2", "--set", "matte_composites=false"])
    assert ok.exit_code == 0, ok.output
    assert "1 layered-images samples" in ok.output and "1 inputs skipped" in ok.output

    (src / "good" / "bg.png").unlink()
    nothing = runner.invoke(data_app, ["build", "layered-images", "--src", str(src), "--out", str(tmp_path / "b"),
                                       "--frames", "2", "--set", "matte_composites=false"])
    assert nothing.exit_code == 1


def test_cli_rejects_options_the_recipe_does_not_take(tmp_path):
    result = CliRunner().invoke(data_app, ["build", "synthetic", "--src", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "src" in result.output


def test_cli_export_writes_the_official_layout(tmp_path):
    runner = CliRunner()
    built = runner.invoke(data_app, ["build", "synthetic", "--count", "2", "--out", str(tmp_path / "shards")])
    assert built.exit_code == 0, built.output

    exported = runner.invoke(data_app, ["export", "--shards", str(tmp_path / "shards"), "--out", str(tmp_path / "x")])

    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in (tmp_path / "x" / "synthetic-0000000001").iterdir()) == [
        "bg", "bl", "fg", "mask", "sample.json"]
    assert (tmp_path / "x" / "meta_export.json").is_file()
