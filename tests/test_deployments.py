"""prefect.yaml deploys against a local Prefect server, and a deployment runs through a process worker."""

import json
import os
import subprocess
import sys
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from data_recipes.manifest import read_manifest

REPO_ROOT = Path(__file__).resolve().parents[1]
PREFECT = [sys.executable, "-m", "prefect", "--no-prompt"]


def prefect(*args, env, timeout=240):
    result = subprocess.run([*PREFECT, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def deployments_and_runs():
    async with get_client() as client:
        deployments = {d.name: d for d in await client.read_deployments()}
        runs = await client.read_flow_runs()
        return deployments, runs


def test_deploy_all_then_a_worker_runs_the_data_deployment(prefect_server, tmp_path):
    import asyncio

    env = os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value(), "LAYERFLOW_HOME": str(REPO_ROOT)}
    prefect("work-pool", "create", "layerflow-process", "--type", "process", env=env)
    prefect("deploy", "--all", env=env)
    deployments, _ = asyncio.run(deployments_and_runs())
    assert {"nightly-synthetic", "train-default", "evaluate", "pipeline-quick", "pipeline-default", "pipeline-gpu"} <= set(deployments)
    nightly = deployments["nightly-synthetic"]
    assert nightly.work_pool_name == "layerflow-process"
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]

    out = tmp_path / "shards"
    config = {"recipe": "synthetic", "seed": 0, "count": 4, "frames": 4, "height": 16, "width": 16}
    prefect("deployment", "run", "build-data/nightly-synthetic", "--param", f"config={json.dumps(config)}",
            "--param", f"out_dir={out}", env=env)
    prefect("worker", "start", "--pool", "layerflow-process", "--run-once", env=env, timeout=300)

    _, runs = asyncio.run(deployments_and_runs())
    finished = [r for r in runs if r.deployment_id == nightly.id]
    assert finished and finished[0].state.is_completed(), [r.state for r in finished]
    assert read_manifest(out).total == 4
