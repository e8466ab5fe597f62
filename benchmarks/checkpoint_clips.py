"""Which held-out clips pull a checkpoint's decomposition mean down: per-clip scores of one ``quality_vs_steps.py`` run.

Loads the run's weights at ``--step`` (the last weights, or with ``--average`` their moving
average), decomposes the same held-out clips with the same noise as the benchmark did, and prints
one JSON line per clip (alpha IoU, alpha MAD x 1e3, background and foreground PSNR in dB, and
whether the true mask ``alpha > 0.5`` is empty), then a last line with the mean over all clips and
over those with a non-empty true mask. A clip whose foreground is translucent below 0.5 opacity
has an empty true mask: its IoU is 1 if the predicted alpha stays at or under 0.5 everywhere,
else 0, so a few such clips move the mean more than anything else.

    python benchmarks/checkpoint_clips.py runs/k5000-ema --step 5000 --eval-clips 16 --average
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from data_recipes.synthetic import held_out_samples
from layerflow_model.checkpoint import TRAINABLE_FILE, complete_checkpoints
from layerflow_model.factory import build_pipeline
from layerflow_model.metrics import json_safe, score_clip, summarize
from layerflow_model.train_config import load_model_config
from layerflow_model.weight_average import EMA_FILE

DECOMPOSITION_METRICS = ("alpha_iou", "alpha_mad", "bg_psnr", "fg_psnr")


def checkpoint_weights(run: Path, step: int | None, average: bool) -> tuple[int, Path]:
    """(step, safetensors file) of a run's checkpoint at ``step`` (None: the last one); ``ValueError`` naming what exists."""
    found = dict(complete_checkpoints(run / "train"))
    if not found:
        raise ValueError(f"{run}: no complete checkpoint under {run / 'train' / 'checkpoints'}")
    step = max(found) if step is None else step
    if step not in found:
        raise ValueError(f"{run}: no checkpoint at step {step}; kept: {sorted(found)}")
    weights = found[step] / (EMA_FILE if average else TRAINABLE_FILE)
    if not weights.is_file():
        raise ValueError(f"{weights}: missing (--average needs a run scored with --ema-decay)")
    return step, weights


@torch.no_grad()
def score_checkpoint(run: Path, weights: Path, eval_clips: int, seed: int) -> list[dict[str, object]]:
    """Per-clip decomposition scores ``{"clip", <DECOMPOSITION_METRICS>, "empty_true_mask"}`` of ``weights``
    on the first ``eval_clips`` held-out clips, decomposed as ``quality_vs_steps`` does (noise seed ``seed``)."""
    config = load_model_config(str(run / "model_config.json"))
    pipe = build_pipeline(config, seed=seed)
    pipe.set_progress_bar_config(disable=True)
    pipe.transformer.load_state_dict(load_file(weights))
    pipe.transformer.eval()
    samples = held_out_samples(eval_clips, config.clip.num_frames, config.clip.height, config.clip.width)
    decomposed = pipe([s.prompts for s in samples], given=[s.clip for s in samples], task="decompose",
                      generator=torch.Generator().manual_seed(seed)).clips
    rows = []
    for sample, clip in zip(samples, decomposed, strict=True):
        scores = score_clip(clip, sample.clip)
        rows.append({"clip": sample.key, **{m: scores[m] for m in DECOMPOSITION_METRICS},
                     "empty_true_mask": not bool((sample.clip.alpha > 0.5).any())})
    return rows


def means(rows: Sequence[dict[str, object]]) -> dict[str, float] | None:
    """Mean of each decomposition metric over ``rows`` (finite values, as the benchmark averages); None if no row."""
    if not rows:
        return None
    return summarize({str(r["clip"]): {m: float(r[m]) for m in DECOMPOSITION_METRICS} for r in rows})["mean"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a quality_vs_steps.py --out folder")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the last kept)")
    parser.add_argument("--average", action="store_true", help="score the moving average (ema.safetensors)")
    parser.add_argument("--eval-clips", type=int, default=8, help="the run's --eval-clips")
    parser.add_argument("--seed", type=int, default=0, help="the run's --seed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        step, weights = checkpoint_weights(args.run, args.step, args.average)
    except ValueError as error:
        parser.error(str(error))
    rows = score_checkpoint(args.run, weights, args.eval_clips, args.seed)
    for row in rows:
        print(json.dumps(json_safe(row)))
    non_empty = [r for r in rows if not r["empty_true_mask"]]
    print(json.dumps(json_safe({"step": step, "weights": weights.name, "clips": len(rows), "mean": means(rows),
                                "non_empty_clips": len(non_empty), "mean_non_empty": means(non_empty)})))


if __name__ == "__main__":
    main()
