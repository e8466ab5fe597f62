"""What refining a decomposition by the compositing equation buys, and its two settings chosen.

Decomposes ``--count`` synthetic evaluation clips (seeds from ``--first-seed``, never trained
on; the default 1,010,000 keeps them apart from the 64 clips the evaluation reports, seeds
1,000,000-1,000,063, so the settings are not chosen on the figures they are judged by) with
the model's defaults but no refinement, then scores the layers as they are and refined
(:func:`layerflow_model.compositing.refine_by_compositing`) at every ``--prior-weights`` x
``--bands`` setting, with the evaluation's metrics. Prints one JSON line per setting, then a
Markdown table.

    python benchmarks/compositing_refinement.py --count 64
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from data_recipes.synthetic import held_out_samples
from layerflow_model.compositing import PRIOR_WEIGHT, UNSURE_ALPHA, refine_by_compositing

from curve_plot import markdown  # beside this script
from sampling_scores import mean_scores, saved_pipeline

METRICS = ("alpha_iou", "alpha_mad", "alpha_dtssd", "fg_psnr", "bg_psnr", "composite_mae")
VALIDATION_SEED = 1_010_000


def band(text: str) -> tuple[float, float]:
    """``"0.05,0.95"`` -> (0.05, 0.95): the model alphas strictly inside are refined."""
    low, high = (float(value) for value in text.split(","))
    if not 0 <= low < high <= 1:
        raise argparse.ArgumentTypeError(f"{text}: need 0 <= low < high <= 1")
    return low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="saved pipeline folder (default: the shipped model)")
    parser.add_argument("--count", type=int, default=64, help="evaluation clips")
    parser.add_argument("--first-seed", type=int, default=VALIDATION_SEED, help="first evaluation seed (>= 1,000,000)")
    parser.add_argument("--prior-weights", type=float, nargs="+", default=[0.01, 0.03, PRIOR_WEIGHT, 0.3, 1.0])
    parser.add_argument("--bands", type=band, nargs="+", default=[(0.01, 0.99), UNSURE_ALPHA, (0.1, 0.9)],
                        help="low,high model alphas to refine")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipe = saved_pipeline(args.model)
    samples = held_out_samples(args.count, pipe.config.num_frames, pipe.config.height, pipe.config.width,
                               first_seed=args.first_seed)
    start = time.perf_counter()
    decomposed = pipe([s.prompts for s in samples], given=[s.clip.subset("blend") for s in samples], task="decompose",
                      generator=torch.Generator().manual_seed(0), refine_alpha=False)
    print(json.dumps({"clips": len(samples), "first_seed": args.first_seed, "flip_average": decomposed.flip_average,
                      "decompose_seconds": time.perf_counter() - start}), flush=True)
    truths = [s.clip for s in samples]
    rows = [{"prior_weight": None, "band": None} | mean_scores(decomposed.clips, truths, METRICS)]
    print(json.dumps(rows[0]), flush=True)
    for prior_weight in args.prior_weights:
        for low_high in args.bands:
            start = time.perf_counter()
            refined = [refine_by_compositing(clip, prior_weight, low_high) for clip in decomposed.clips]
            row = {"prior_weight": prior_weight, "band": list(low_high)} | mean_scores(refined, truths, METRICS)
            row["refine_seconds"] = time.perf_counter() - start
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(markdown(["prior weight", "refined band", *METRICS],
                   [["none" if r["prior_weight"] is None else f"{r['prior_weight']:g}",
                     "none" if r["band"] is None else "{:g}-{:g}".format(*r["band"]),
                     *(f"{r[m]:.3f}" for m in METRICS)] for r in rows]))


if __name__ == "__main__":
    main()
