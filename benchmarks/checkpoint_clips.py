"""Which held-out clips pull a checkpoint's decomposition mean down: per-clip scores of one ``quality_vs_steps.py`` run
(or of a ``layerflow train-stage`` base stage).

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

import torch

from data_recipes.synthetic import held_out_samples
from layerflow_model import LayerFlowPipeline
from layerflow_model.checkpoint import TRAINABLE_FILE, complete_checkpoints
from layerflow_model.metrics import json_safe, summarize
from layerflow_model.train_config import StageConfig, load_model_config
from layerflow_model.training import CONFIG_FILE, MODEL_CONFIG_FILE, stage_pipeline
from layerflow_model.weight_average import EMA_FILE

from quality_vs_steps import Scorer, decompose_held_out, load_weights  # beside this script


def base_stage(run: Path) -> tuple[Path, StageConfig]:
    """The base-stage folder ``run`` names and its saved stage config: a ``quality_vs_steps.py --out`` folder's
    ``train/``, or a ``layerflow train-stage`` base stage's own folder (``OUT/base/<key>``), whose checkpoints hold
    every transformer weight. ``ValueError`` when it is neither, or is another stage's."""
    for folder in (run / "train", run):
        if (folder / CONFIG_FILE).is_file():
            config = StageConfig.model_validate_json((folder / CONFIG_FILE).read_text())
            if config.stage != "base":
                raise ValueError(f"{folder}: a {config.stage} stage, whose checkpoints hold its adapter alone; "
                                 "give a base stage's folder")
            return folder, config
    raise ValueError(f"{run}: no {CONFIG_FILE} here or in train/: neither a quality_vs_steps.py --out folder "
                     "nor a train-stage base stage folder")


def checkpoint_weights(folder: Path, step: int | None, average: bool) -> tuple[int, Path]:
    """(step, safetensors file) of the checkpoint at ``step`` (None: the last one) of base-stage folder ``folder``;
    ``ValueError`` naming the steps it kept."""
    found = dict(complete_checkpoints(folder))
    if not found:
        raise ValueError(f"{folder}: no complete checkpoint under {folder / 'checkpoints'}")
    step = max(found) if step is None else step
    if step not in found:
        raise ValueError(f"{folder}: no checkpoint at step {step}; kept: {sorted(found)}")
    weights = found[step] / (EMA_FILE if average else TRAINABLE_FILE)
    if not weights.is_file():
        raise ValueError(f"{weights}: missing (--average needs a run scored with --ema-decay)")
    return step, weights


def checkpoint_pipeline(run: Path, step: int | None, average: bool) -> tuple[LayerFlowPipeline, int, Path]:
    """(pipeline, step, safetensors file): the checkpoint of :func:`base_stage` ``run`` at ``step`` (None: the last
    kept; ``average``: its moving average), loaded into the pipeline its stage built (from its ``init_from`` model,
    if any). ``ValueError`` as :func:`base_stage` and :func:`checkpoint_weights`."""
    folder, config = base_stage(run)
    step, weights = checkpoint_weights(folder, step, average)
    pipe = stage_pipeline(config, load_model_config(str(folder / MODEL_CONFIG_FILE)))
    load_weights(pipe, weights)
    return pipe, step, weights


def score_checkpoint(pipe: LayerFlowPipeline, eval_clips: int,
                     seed: int) -> tuple[dict[str, dict[str, float]], set[str]]:
    """Per-clip scores ``{clip key: {alpha_iou, alpha_mad, bg_psnr, fg_psnr}}`` of ``pipe`` on the first
    ``eval_clips`` held-out clips at its shape, decomposed and scored by ``quality_vs_steps`` itself (noise seed
    ``seed``), and the keys of the clips whose true mask ``alpha > 0.5`` is empty."""
    scorer = Scorer(held_out_samples(eval_clips, pipe.config.num_frames, pipe.config.height, pipe.config.width))
    empty_true_mask = {s.key for s in scorer.samples if not (s.clip.alpha > 0.5).any()}
    return scorer.decomposition_per_clip(decompose_held_out(pipe, scorer.samples, seed)), empty_true_mask


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a quality_vs_steps.py --out folder, or a train-stage base stage "
                        "folder (OUT/base/<key>)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the last kept)")
    parser.add_argument("--average", action="store_true", help="score the moving average (ema.safetensors)")
    parser.add_argument("--eval-clips", type=int, default=8, help="the run's --eval-clips")
    parser.add_argument("--seed", type=int, default=0, help="the run's --seed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        pipe, step, weights = checkpoint_pipeline(args.run, args.step, args.average)
    except ValueError as error:
        parser.error(str(error))
    scores, empty_true_mask = score_checkpoint(pipe, args.eval_clips, args.seed)
    for key, clip_scores in scores.items():
        print(json.dumps(json_safe({"clip": key, **clip_scores, "empty_true_mask": key in empty_true_mask})))
    non_empty = {key: clip_scores for key, clip_scores in scores.items() if key not in empty_true_mask}
    summary = {"step": step, "weights": weights.name, "clips": len(scores), "mean": summarize(scores)["mean"],
               "non_empty_clips": len(non_empty), "mean_non_empty": summarize(non_empty)["mean"] if non_empty else None}
    print(json.dumps(json_safe(summary)))


if __name__ == "__main__":
    main()
