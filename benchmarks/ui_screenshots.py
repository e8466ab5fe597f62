"""Screenshots of the Prefect UI and the MLflow UI for a finished pipeline run (for the README).

Starts ``prefect server start`` (on the local Prefect database, which holds the runs of the
temporary servers the CLI starts) and ``mlflow ui`` on ``RUN/mlflow.db``, then captures with
headless Chromium (Debian's ``chromium`` package): the newest ``layerflow-pipeline`` flow run,
and the MLflow experiment ``layerflow`` with its nested stage runs and the evaluation run.

    python benchmarks/ui_screenshots.py --run runs/default --out benchmarks/results/screenshots
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import mlflow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


@contextmanager
def server(command: list[str], health_url: str, timeout: float = 120.0):
    """Run ``command`` until the block ends, once ``health_url`` answers."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(health_url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{command[0]} did not answer at {health_url}") from None
                time.sleep(1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def screenshot(url: str, path: Path, size: str = "1600,1000", wait_ms: int = 20000) -> Path:
    """Render ``url`` in headless Chromium for ``wait_ms`` of virtual time and save a PNG to ``path``."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise RuntimeError("no chromium on PATH; install Debian's chromium package")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                        f"--virtual-time-budget={wait_ms}", f"--screenshot={path}", url],
                       check=True, capture_output=True, timeout=120)
    return path


def newest_flow_run(api: str, flow_name: str) -> str:
    """Id of the newest flow run of ``flow_name`` on the Prefect API at ``api``."""
    body = json.dumps({"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC", "limit": 1}).encode()
    request = urllib.request.Request(f"{api}/flow_runs/filter", data=body, headers={"Content-Type": "application/json"})
    runs = json.loads(urllib.request.urlopen(request, timeout=30).read())
    if not runs:
        raise RuntimeError(f"no {flow_name} flow run in the local Prefect database")
    return runs[0]["id"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a pipeline run folder (holds mlflow.db)")
    parser.add_argument("--out", type=Path, required=True, help="folder for prefect.png and mlflow*.png")
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    args = parser.parse_args(argv)
    bin_dir = Path(sys.executable).parent
    store = f"sqlite:///{(args.run / 'mlflow.db').resolve()}"

    prefect_ui = f"http://127.0.0.1:{args.prefect_port}"
    with server([str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(args.prefect_port)],
                f"{prefect_ui}/api/health"):
        run_id = newest_flow_run(f"{prefect_ui}/api", "layerflow-pipeline")
        print(screenshot(f"{prefect_ui}/runs/flow-run/{run_id}", args.out / "prefect.png"))

    experiment = mlflow.MlflowClient(store).get_experiment_by_name("layerflow")
    eval_runs = mlflow.MlflowClient(store).search_runs([experiment.experiment_id], "tags.`layerflow.stage` = 'eval'",
                                                       max_results=1, order_by=["attributes.start_time DESC"])
    mlflow_ui = f"http://127.0.0.1:{args.mlflow_port}"
    with server([str(bin_dir / "mlflow"), "ui", "--backend-store-uri", store, "--host", "127.0.0.1",
                 "--port", str(args.mlflow_port)], f"{mlflow_ui}/health"):
        runs_table = f"{mlflow_ui}/#/experiments/{experiment.experiment_id}/runs?viewMode=TABLE&workflowType=machine_learning"
        print(screenshot(runs_table, args.out / "mlflow.png"))
        if eval_runs:
            run = eval_runs[0].info.run_id
            print(screenshot(f"{mlflow_ui}/#/experiments/{experiment.experiment_id}/runs/{run}", args.out / "mlflow-eval.png"))


if __name__ == "__main__":
    main()
