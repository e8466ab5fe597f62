"""Training throughput per stage: samples/s and peak memory of base, motion and content.

Each stage runs in its own process (so its peak resident memory is its own) on synthetic
data at the model's clip shape, with ``--threads`` torch threads (2 = the project's CPU
budget). samples/s is the mean over the optimizer steps after the first two (warm-up);
peak memory is the process's maximum RSS (CPU) or torch's peak allocation (GPU).

    python benchmarks/training_throughput.py --model small --steps 8 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from data_recipes.build import build
from data_recipes.frozen import FrozenConfig, FrozenRecipe
from data_recipes.synthetic import SyntheticConfig, SyntheticRecipe
from layerflow_model.callbacks import NoCallbacks
from layerflow_model.train_config import StageConfig, load_model_config
from layerflow_model.video_io import write_text_atomic

WARMUP_STEPS = 2


class Throughput(NoCallbacks):
    """Keeps every step's samples/s."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        if "samples_per_s" in metrics:
            self.rates.append(metrics["samples_per_s"])


def run_stage(config_file: Path, threads: int) -> dict:
    """Child process: train one stage, return its mean samples/s and peak memory."""
    import torch

    from layerflow_model.training import train_stage

    torch.set_num_threads(threads)
    config = StageConfig.model_validate_json(config_file.read_text())
    meter = Throughput()
    train_stage(config, meter)
    rates = meter.rates[WARMUP_STEPS:] or meter.rates
    peak_mib = (torch.cuda.max_memory_allocated() if torch.cuda.is_available() and config.device != "cpu"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    return {"stage": config.stage, "samples_per_s": sum(rates) / len(rates), "peak_mib": peak_mib,
            "batch_size": config.batch_size, "steps": config.steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_stage(args.child, args.threads)))
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="layerflow-bench-"))
    clip = load_model_config(args.model).clip
    shape = SyntheticConfig(count=32, frames=clip.num_frames, height=clip.height, width=clip.width)
    build(SyntheticRecipe(shape), work / "moving")
    build(FrozenRecipe(FrozenConfig(src=work / "moving")), work / "static")
    common = dict(model=args.model, device=args.device, steps=args.steps, batch_size=args.batch_size, lr=1e-4,
                  checkpoint_every=args.steps, eval_batches=0, preview_count=0, motion_check_count=0,
                  gradient_checkpointing=args.gradient_checkpointing, cache_dir=work / "cache")
    stages = {
        "base": dict(data=[work / "moving"]),
        "motion": dict(data=[work / "static"], init_from=work / "base" / "model"),
        "content": dict(data=[work / "static", work / "moving"], init_from=work / "base" / "model",
                        motion_adapter=work / "motion" / "adapter"),
    }
    results = []
    load_before = os.getloadavg()[0]
    for stage, extra in stages.items():
        config_file = work / f"{stage}.json"
        config_file.write_text(StageConfig(stage=stage, out_dir=work / stage, **common, **extra).model_dump_json())
        child = subprocess.run([sys.executable, __file__, "--child", str(config_file), "--threads", str(args.threads)],
                               capture_output=True, text=True, check=True)
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"| stage | samples/s | peak memory (MiB) |  ({args.model}, batch {args.batch_size}, {args.threads} threads, "
          f"{args.device}, gradient checkpointing {'on' if args.gradient_checkpointing else 'off'})")
    print("| --- | --- | --- |")
    for r in results:
        print(f"| {r['stage']} | {r['samples_per_s']:.2f} | {r['peak_mib']:.0f} |")
    print(f"1-minute load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
          f"(above {args.threads} means other processes shared the cores)")
    write_text_atomic(work / "throughput.json", json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
