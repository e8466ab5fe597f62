"""How well does a model decompose videos longer than its clip, window by window?

Renders ``--count`` held-out synthetic clips of ``--frames`` frames at the model's frame size
(seeds the training never saw), decomposes each in windows of the model's clip length with
every ``--overlaps`` value (:func:`layerflow_model.windows.sample_in_windows`, what
``layerflow decompose`` does), and scores all frames against the ground truth with the
evaluation's metrics. The row ``first window only`` scores the model on the first T frames
alone, what ``layerflow decompose`` returned before it worked in windows. ``alpha_dtssd``
(temporal error of the alpha, x 1e2) is where seams between windows would show. Prints one
JSON line per setting and writes ``OUT/windowed.json`` and ``OUT/windowed.md``.

    python benchmarks/windowed_decompose.py --count 64 --frames 24 --overlaps 0 2 4 6 --out DIR

``--run DIR [--step N] [--average]`` scores a checkpoint of a ``quality_vs_steps.py`` run instead
of a saved pipeline (a model trained on shorter clips decomposing the product's clips, say).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from data_recipes.sample import LayeredSample
from data_recipes.synthetic import held_out_samples
from layerflow_model import LayerFlowPipeline
from layerflow_model.video_io import write_text_atomic
from layerflow_model.windows import sample_in_windows, split_windows

from curve_plot import markdown  # beside this script
from sampling_scores import add_model_options, mean_scores, pipeline_from_options

METRICS = ("alpha_iou", "alpha_mad", "alpha_dtssd", "bg_psnr", "fg_psnr")


def decompose_scores(pipe: LayerFlowPipeline, samples: list[LayeredSample], overlap: int | None) -> dict[str, float]:
    """Mean :data:`METRICS` over the samples and seconds per clip; overlap None: the first window only."""
    window = pipe.config.num_frames
    clips, truths, start = [], [], time.perf_counter()
    for sample in tqdm(samples, desc=f"overlap {overlap}", leave=False):
        truth = sample.clip if overlap is not None else split_windows(sample.clip, [0], window)[0]
        clips.append(sample_in_windows(pipe, sample.prompts, truth.subset("blend"), "decompose", overlap or 0).clip)
        truths.append(truth)
    seconds = (time.perf_counter() - start) / len(samples)
    return mean_scores(clips, truths, METRICS) | {"seconds_per_clip": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_options(parser)
    parser.add_argument("--count", type=int, default=64, help="held-out clips")
    parser.add_argument("--frames", type=int, default=24, help="frames per clip (more than the model's clip)")
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 2, 4, 6], help="overlaps to compare, frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe, model = pipeline_from_options(parser, args)
    samples = held_out_samples(args.count, args.frames, pipe.config.height, pipe.config.width)

    rows = []
    for overlap in [None, *args.overlaps]:
        label = "first window only" if overlap is None else f"overlap {overlap}"
        row = {"setting": label} | decompose_scores(pipe, samples, overlap)
        print(json.dumps(row), flush=True)
        rows.append(row)

    args.out.mkdir(parents=True, exist_ok=True)
    record = {"model": model, "count": args.count, "frames": args.frames, "window": pipe.config.num_frames,
              "rows": rows}
    write_text_atomic(args.out / "windowed.json", json.dumps(record, indent=2) + "\n")
    table = markdown(["setting", *METRICS, "s/clip"],
                     [[r["setting"], *(f"{r[m]:.3f}" for m in METRICS), f"{r['seconds_per_clip']:.2f}"] for r in rows])
    write_text_atomic(args.out / "windowed.md", table + "\n")
    print(table)


if __name__ == "__main__":
    main()
