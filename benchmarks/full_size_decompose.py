"""Decomposition at the input's size: the model's layers resized, against resized and re-solved by compositing.

Renders ``--count`` held-out synthetic clips (seeds the training never saw) at ``--size`` x
``--size``, shrinks each blend to the model's size as ``layerflow decompose`` does, decomposes it
with the model's defaults, and scores: the layers at the model's size against the truth rendered
there, and the layers brought to full size (bicubic resize alone, and resize then alpha and fg
re-solved against the full-size blend: :func:`layerflow_model.compositing.upsample_by_compositing`,
what ``layerflow decompose --full-size`` writes) against the truth rendered at full size. Prints one
JSON line per setting, then a Markdown table.

    python benchmarks/full_size_decompose.py --count 32 --size 128
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from data_recipes.framing import fit_frames
from data_recipes.synthetic import held_out_samples
from layerflow_model import LayeredClip
from layerflow_model.compositing import upsample_by_compositing

from curve_plot import markdown  # beside this script
from sampling_scores import mean_scores, saved_pipeline

METRICS = ("alpha_iou", "alpha_mad", "alpha_grad", "fg_psnr", "bg_psnr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="saved pipeline folder (default: the shipped model)")
    parser.add_argument("--count", type=int, default=32, help="held-out clips")
    parser.add_argument("--size", type=int, default=128, help="full size (pixels, square)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = saved_pipeline(args.model)
    frames, height, width = pipe.config.num_frames, pipe.config.height, pipe.config.width
    full = held_out_samples(args.count, frames, args.size, args.size)
    small = held_out_samples(args.count, frames, height, width)  # the same seeds rendered at the model's size
    start = time.perf_counter()
    given = [LayeredClip(blend=fit_frames(s.clip.blend, (height, width))) for s in full]
    decomposed = pipe([s.prompts for s in full], given=given, task="decompose",
                      generator=torch.Generator().manual_seed(0))
    seconds = time.perf_counter() - start
    rows = [{"setting": f"model size ({height}x{width})", "seconds": seconds}
            | mean_scores(decomposed.clips, [s.clip for s in small], METRICS)]
    for setting, refine in ((f"full size ({args.size}x{args.size}), resized", False),
                            (f"full size ({args.size}x{args.size}), resized and re-solved", True)):
        start = time.perf_counter()
        clips = [upsample_by_compositing(clip, s.clip.blend, refine=refine) for clip, s in zip(decomposed.clips, full)]
        rows.append({"setting": setting, "seconds": time.perf_counter() - start}
                    | mean_scores(clips, [s.clip for s in full], METRICS))
    for row in rows:
        print(json.dumps(row), flush=True)
    print(markdown(["setting", *METRICS, "seconds"],
                   [[r["setting"], *(f"{r[m]:.3f}" for m in METRICS), f"{r['seconds']:.1f}"] for r in rows]))


if __name__ == "__main__":
    main()
