"""Time a profile's data build and three training stages, or one stage's own file, with no Prefect or MLflow installed.

For a GPU machine that holds only torch and the model's own packages: builds the profile's
data into ``OUT/data`` and trains base, motion and content into the same folders and
``DONE.json`` markers as the training flow (``OUT/<stage>/<key>/``, the key hashing config,
data and upstream stage), so a rerun skips finished stages and resumes an interrupted one.
The evaluation flow then scores ``OUT/content/<key>/model`` on any machine. Prints one JSON
line per step (data, each stage) with its seconds, and a last JSON object with all of them.
``--stage FILE`` trains one stage from its own config file instead (as ``layerflow
train-stage``: into ``OUT/<stage>/<key>/``, its data the folders the file lists).

    python benchmarks/device_training.py --profile gpu --out runs/gpu
    python benchmarks/device_training.py --stage configs/encoded-noise-gpu.yaml --out runs/gpu-sampler
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from data_recipes.training_data import build_training_data
from layerflow_model.callbacks import LoggingCallbacks, StageArtifacts
from layerflow_model.completion import keyed_stage_config, keyed_standalone_stage, read_done, write_done
from layerflow_model.train_config import STAGES, StageConfig, load_model_config, load_training_config, read_stage_config
from layerflow_model.training import train_stage


def finished_or_trained(key: str, config: StageConfig, log_every: int) -> StageArtifacts:
    """The stage's artifacts: read from its ``DONE.json`` when finished under ``key``, else trained (resuming)."""
    if (artifacts := read_done(config.out_dir, key)) is None:
        artifacts = train_stage(config, LoggingCallbacks(every=log_every))
        write_done(artifacts, key)
    return artifacts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--profile", help="a training profile (quick, default, gpu)")
    source.add_argument("--config", type=Path, help="a training config file (YAML or JSON)")
    source.add_argument("--stage", type=Path, help="one stage's config file (as layerflow train-stage takes)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (data, stages, cache)")
    parser.add_argument("--log-every", type=int, default=100, help="steps between logged training metrics")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)

    out = args.out.resolve()
    if args.stage is not None:
        key, stage_config = keyed_standalone_stage(read_stage_config(args.stage, out_dir=out), out)
        tic = time.perf_counter()
        artifacts = finished_or_trained(key, stage_config, args.log_every)
        print(json.dumps({"step": stage_config.stage, "seconds": round(time.perf_counter() - tic, 1), "key": key,
                          "final_step": artifacts.final_step, "metrics": artifacts.metrics,
                          "model": str(artifacts.model_dir or artifacts.adapter_dir)}))
        return
    config = load_training_config(args.profile, args.config)
    timings = {}
    tic = time.perf_counter()
    data = build_training_data(out / "data", config.auto_data, load_model_config(config.model).clip)
    timings["data"] = time.perf_counter() - tic
    print(json.dumps({"step": "data", "seconds": round(timings["data"], 1)}), flush=True)

    results: dict = {}
    for stage in STAGES:
        key, stage_config = keyed_stage_config(config, stage, out, data[stage], results)
        tic = time.perf_counter()
        artifacts = finished_or_trained(key, stage_config, args.log_every)
        timings[stage] = time.perf_counter() - tic
        results[stage] = (key, artifacts)
        print(json.dumps({"step": stage, "seconds": round(timings[stage], 1), "key": key,
                          "final_step": artifacts.final_step, "metrics": artifacts.metrics}), flush=True)
    print(json.dumps({"seconds": {k: round(v, 1) for k, v in timings.items()},
                      "model": str(results["content"][1].model_dir)}))


if __name__ == "__main__":
    main()
