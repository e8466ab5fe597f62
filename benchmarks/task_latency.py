"""Seconds per task, as a user waits for them, and a gallery of each task's output.

Runs each ``layerflow`` task command (decompose, fill-background, fill-foreground, generate) in
its own process on one held-out synthetic clip (seed 1,000,000 + ``--seed``), with the shipped
model or ``--model``, and times the whole command: interpreter start, model load, sampling and
writing every output file. Prints one JSON line per task (``seconds``, the model's step count)
and then ``{"tasks": {...}}``. With ``--gallery DIR`` it copies each task's ``preview.png``,
and the ground truth's, scaled up ``--scale`` times (nearest neighbour) to ``DIR/<task>.png``.

    python benchmarks/task_latency.py --threads 2 --gallery benchmarks/results/gallery
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from data_recipes.synthetic import TRAIN_SEED_LIMIT, held_out_samples
from layerflow_model import LayerFlowPipeline
from layerflow_model.layerflow_folder import write_layerflow_sequence
from layerflow_model.preview import write_preview_grid
from layerflow_model.shipped import shipped_model_dir
from layerflow_model.video_io import write_png_sequence, write_rgba_webm


def task_commands(inputs: Path, prompts, out: Path) -> dict[str, list[str]]:
    """``layerflow`` arguments of each task on the clip files in ``inputs``, writing to ``out/<task>``."""
    text = ["--fg-prompt", prompts.fg, "--bg-prompt", prompts.bg, "--blend-prompt", prompts.blend]
    return {
        "decompose": ["decompose", str(inputs / "blend"), "--out", str(out / "decompose"), *text],
        "fill-background": ["fill-background", "--foreground", str(inputs / "foreground.webm"),
                            "--out", str(out / "fill-background"), *text],
        "fill-foreground": ["fill-foreground", "--background", str(inputs / "background"),
                            "--out", str(out / "fill-foreground"), *text],
        "generate": ["generate", "--out", str(out / "generate"), *text],
    }


def write_inputs(folder: Path, seed: int, shape: tuple[int, int, int]):
    """The held-out clip's blend and background frames and RGBA foreground in ``folder``; returns the sample."""
    (sample,) = held_out_samples(1, *shape, first_seed=TRAIN_SEED_LIMIT + seed)
    write_png_sequence(folder / "blend", sample.clip.blend)
    write_png_sequence(folder / "background", sample.clip.bg)
    write_rgba_webm(folder / "foreground.webm", sample.clip.fg, sample.clip.alpha, fps=8)
    write_layerflow_sequence(folder / "ground-truth", sample.clip)
    write_preview_grid(folder / "ground-truth" / "preview.png", sample.clip)
    return sample


def scaled_copy(src: Path, dest: Path, scale: int) -> None:
    """``src`` PNG scaled ``scale`` times with nearest-neighbour sampling, written to ``dest``."""
    image = Image.open(src)
    dest.parent.mkdir(parents=True, exist_ok=True)
    image.resize((image.width * scale, image.height * scale), Image.NEAREST).save(dest)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0, help="held-out clip: synthetic seed 1,000,000 + SEED")
    parser.add_argument("--threads", type=int, default=2, help="OMP/MKL threads of each task process")
    parser.add_argument("--gallery", type=Path, default=None, help="folder for the scaled-up previews")
    parser.add_argument("--scale", type=int, default=4)
    args = parser.parse_args(argv)

    model = args.model or shipped_model_dir()
    config = LayerFlowPipeline.load_config(model)
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    command = [str(Path(sys.executable).parent / "layerflow")]
    results = {}
    with tempfile.TemporaryDirectory(prefix="layerflow-latency-") as work:
        work = Path(work)
        sample = write_inputs(work / "inputs", args.seed, (config["num_frames"], config["height"], config["width"]))
        for task, task_args in task_commands(work / "inputs", sample.prompts, work / "out").items():
            tic = time.perf_counter()
            subprocess.run(command + task_args + ["--model", str(model)], check=True, env=env, capture_output=True)
            seconds = time.perf_counter() - tic
            steps = json.loads((work / "out" / task / "layers.json").read_text())["steps"]
            results[task] = {"seconds": round(seconds, 2), "steps": steps}
            print(json.dumps({"task": task, **results[task]}), flush=True)
            if args.gallery:
                scaled_copy(work / "out" / task / "preview.png", args.gallery / f"{task}.png", args.scale)
        if args.gallery:
            scaled_copy(work / "inputs" / "ground-truth" / "preview.png", args.gallery / "ground-truth.png", args.scale)
    print(json.dumps({"tasks": results, "model": str(model), "threads": args.threads, "prompts": vars(sample.prompts)}))


if __name__ == "__main__":
    main()
