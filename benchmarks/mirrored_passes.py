"""What averaging mirrored passes buys each task that is given layers: one pass against four.

Runs decompose, fill-background and fill-foreground on ``--count`` held-out synthetic clips
(seeds the training never saw) with ``flip_average=False`` and ``True`` (the given layers also
mirrored left-right, upside down and both; the results mirrored back and averaged), same
prompts and noise seed, no compositing refinement, and scores them with the evaluation's
metrics. Prints one JSON line per task and setting, then a Markdown table.

    python benchmarks/mirrored_passes.py --count 64
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from data_recipes.synthetic import held_out_samples
from layerflow_model import LayerFlowPipeline
from layerflow_model.conditioning import TASK_GIVEN_LAYERS, Task

from curve_plot import markdown  # beside this script
from sampling_scores import mean_scores, saved_pipeline

METRICS = ("alpha_iou", "alpha_mad", "alpha_dtssd", "fg_psnr", "bg_psnr")
TASKS = (Task.DECOMPOSE, Task.FILL_BACKGROUND, Task.FILL_FOREGROUND)


def task_scores(pipe: LayerFlowPipeline, samples, task: Task, flip_average: bool) -> dict[str, float]:
    """Mean :data:`METRICS` of ``task`` over the samples (one batch, noise seed 0) and its seconds."""
    start = time.perf_counter()
    given = [sample.clip.subset(*TASK_GIVEN_LAYERS[task]) for sample in samples]
    clips = pipe([sample.prompts for sample in samples], given=given, task=task,
                 generator=torch.Generator().manual_seed(0), flip_average=flip_average,
                 refine_alpha=False).clips
    seconds = time.perf_counter() - start
    return mean_scores(clips, [sample.clip for sample in samples], METRICS) | {"seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="saved pipeline folder (default: the shipped model)")
    parser.add_argument("--count", type=int, default=64, help="held-out clips")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = saved_pipeline(args.model)
    samples = held_out_samples(args.count, pipe.config.num_frames, pipe.config.height, pipe.config.width)
    rows = []
    for task in TASKS:
        for flip_average in (False, True):
            row = {"task": task.value, "passes": 4 if flip_average else 1} | task_scores(pipe, samples, task, flip_average)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(markdown(["task", "passes", *METRICS, "seconds"],
                   [[r["task"], str(r["passes"]), *(f"{r[m]:.3f}" for m in METRICS), f"{r['seconds']:.1f}"]
                    for r in rows]))


if __name__ == "__main__":
    main()
