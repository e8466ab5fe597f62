"""How well can any model fill or generate a layer that only a prompt describes?

The synthetic prompts name a layer's attributes (colour, shape, size, direction, pattern, ...)
but not where the shape starts, the background's phase, period or angle. A layer made from its
prompt alone (the background when filling it behind a given foreground, the foreground when
filling it over a given background, both when generating) is therefore scored against one draw
out of many that fit the prompt. This benchmark measures that ceiling on the held-out seeds the
evaluation uses: it draws up to ``--max-worlds`` worlds from the synthetic recipe's own attribute
sampler and keeps, for each clip, up to ``--draws`` whose foreground (background) prompt is the
clip's word for word (rejection sampling, so the kept draws follow the exact distribution given
the prompt), then scores

- ``sampler``: each draw against the truth, averaged: a perfect generative model;
- ``mean``: the per-pixel mean of the draws against the truth: the best a model that returns
  one average answer (a one-step regressor) can expect.

Metrics as the evaluation computes them: background PSNR (dB), alpha IoU (alpha > 0.5) and alpha
area ratio (1 when the object shows at its size and opacity, 0 when faint), averaged over the
clips; the matte's travel (pixels its centre moves from the first frame to the last, beside the
truth's: how far a layer made from the prompt moves the object); and the oracle's attribute
accuracy (:mod:`data_recipes.oracle`: colour, shape, direction, pattern read back from the
layers, each a share in [0, 1]) of each draw (``sampler``: draw i's foreground over draw i's
background) and of the mean layers (``mean``: alpha and the premultiplied foreground averaged,
the foreground straight again, the background averaged). A clip whose prompt is so rare that
fewer than 2 matching worlds turn up is left out and counted in ``skipped``. Prints one JSON object:
``{"clips", "scored", "skipped", "draws", "bg_psnr": {"sampler", "mean"}, "alpha_iou": {...},
"alpha_area_ratio": {...}, "travel_px": {"truth", "sampler", "mean"}, "oracle_accuracy": {...},
"oracle": {"sampler": {attribute: share}, "mean": {...}}}``.

    python benchmarks/prompt_ceiling.py --clips 16 --draws 16
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from tqdm import tqdm

from data_recipes.oracle import ATTRIBUTES, SyntheticOracle, accuracy, matte_travel, truth_of
from data_recipes.synthetic import (
    TRAIN_SEED_LIMIT,
    describe_background,
    describe_foreground,
    held_out_samples,
    render_background,
    render_foreground,
    sample_attributes,
)
from layerflow_model.clip import LayeredClip, premultiply, unpremultiply
from layerflow_model.matting_metrics import alpha_area_ratio, alpha_iou
from layerflow_model.metrics import psnr


def same_prompt_draws(fg_prompts: set[str], bg_prompts: set[str], draws: int, max_worlds: int,
                      shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[dict, dict]:
    """Up to ``draws`` foreground (background) attribute sets per prompt whose caption is that prompt.

    Draws at most ``max_worlds`` worlds of (frames, height, width) ``shape``; returns
    ``{prompt: [FgAttributes, ...]}`` and ``{prompt: [BgAttributes, ...]}``.
    """
    foregrounds = {prompt: [] for prompt in fg_prompts}
    backgrounds = {prompt: [] for prompt in bg_prompts}
    for _ in tqdm(range(max_worlds), desc="worlds", mininterval=5):
        fg, bg = sample_attributes(rng, *shape)
        for kept, caption, attributes in ((foregrounds, describe_foreground(fg), fg),
                                          (backgrounds, describe_background(bg), bg)):
            if caption in kept and len(kept[caption]) < draws:
                kept[caption].append(attributes)
        if all(len(v) == draws for v in foregrounds.values()) and all(len(v) == draws for v in backgrounds.values()):
            break
    return foregrounds, backgrounds


def ceiling_scores(alphas: list[np.ndarray], backgrounds: list[np.ndarray], true_alpha: np.ndarray,
                   true_bg: np.ndarray) -> dict[str, dict[str, float]]:
    """Sampler and mean scores of drawn alphas (T, H, W) and backgrounds (T, H, W, 3), all in [0, 1]
    (travel in pixels, the truth's beside them)."""
    return {
        "bg_psnr": {"sampler": float(np.mean([psnr(bg, true_bg) for bg in backgrounds])),
                    "mean": psnr(np.mean(backgrounds, axis=0), true_bg)},
        "alpha_iou": {"sampler": float(np.mean([alpha_iou(a, true_alpha) for a in alphas])),
                      "mean": alpha_iou(np.mean(alphas, axis=0), true_alpha)},
        "alpha_area_ratio": {"sampler": float(np.mean([alpha_area_ratio(a, true_alpha) for a in alphas])),
                             "mean": alpha_area_ratio(np.mean(alphas, axis=0), true_alpha)},
        "travel_px": {"truth": matte_travel(true_alpha), "sampler": float(np.mean([matte_travel(a) for a in alphas])),
                      "mean": matte_travel(np.mean(alphas, axis=0))},
    }


def mean_clip(foregrounds: list[tuple[np.ndarray, np.ndarray]], backgrounds: list[np.ndarray]) -> LayeredClip:
    """The per-pixel mean of drawn (colour, alpha) foregrounds and of drawn backgrounds as one clip: alpha and
    the premultiplied foreground averaged, the foreground straight again (:func:`unpremultiply`)."""
    alpha = np.mean([a for _, a in foregrounds], axis=0)  # (T, H, W)
    premultiplied = np.mean([premultiply(colour, a) for colour, a in foregrounds], axis=0)  # (T, H, W, 3)
    bg = np.mean(backgrounds, axis=0)  # (T, H, W, 3)
    return LayeredClip(fg=unpremultiply(premultiplied, alpha), alpha=alpha.astype(np.float32),
                       bg=bg.astype(np.float32)).with_blend()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=16, help="held-out clips (seeds 1,000,000 ..)")
    parser.add_argument("--draws", type=int, default=16, help="same-prompt worlds drawn per clip")
    parser.add_argument("--max-worlds", type=int, default=2_000_000, help="most worlds drawn in all")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=32, help="height and width in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    args = parser.parse_args()
    shape = (args.frames, args.size, args.size)
    rng = np.random.default_rng(args.seed)
    samples = held_out_samples(args.clips, *shape)
    fg_prompts, bg_prompts = {sample.prompts.fg for sample in samples}, {sample.prompts.bg for sample in samples}
    foregrounds, backgrounds = same_prompt_draws(fg_prompts, bg_prompts, args.draws, args.max_worlds, shape, rng)
    oracle = SyntheticOracle(*shape)
    per_clip, sampler_readings, sampler_truths, mean_readings, mean_truths = [], [], [], [], []
    for sample in samples:
        fgs, bgs = foregrounds[sample.prompts.fg], backgrounds[sample.prompts.bg]
        if min(len(fgs), len(bgs)) < 2:
            print(f"skipped {sample.key}: {len(fgs)} foreground and {len(bgs)} background draws match its prompts",
                  file=sys.stderr)
            continue
        drawn_fgs = [render_foreground(fg, *shape) for fg in fgs]  # (colour, alpha) each
        drawn_bgs = [render_background(bg, *shape) for bg in bgs]
        per_clip.append(ceiling_scores([a for _, a in drawn_fgs], drawn_bgs, sample.clip.alpha, sample.clip.bg))
        truth = truth_of(sample.extra["attributes"])
        for (colour, alpha), bg in zip(drawn_fgs, drawn_bgs):
            sampler_readings.append(oracle.read(LayeredClip(fg=colour, alpha=alpha, bg=bg)))
            sampler_truths.append(truth)
        mean_readings.append(oracle.read(mean_clip(drawn_fgs, drawn_bgs)))
        mean_truths.append(truth)
    if not per_clip:
        parser.error(f"no clip had 2 same-prompt draws in {args.max_worlds} worlds: raise --max-worlds")
    summary = {metric: {kind: float(np.mean([clip[metric][kind] for clip in per_clip])) for kind in kinds}
               for metric, kinds in per_clip[0].items()}
    read_back = {"sampler": accuracy(sampler_readings, sampler_truths), "mean": accuracy(mean_readings, mean_truths)}
    summary["oracle_accuracy"] = {kind: float(np.mean([shares[a] for a in ATTRIBUTES]))
                                  for kind, shares in read_back.items()}
    summary["oracle"] = read_back
    print(json.dumps({"clips": args.clips, "scored": len(per_clip), "skipped": args.clips - len(per_clip),
                      "draws": args.draws, "first_seed": TRAIN_SEED_LIMIT, **summary}))


if __name__ == "__main__":
    main()
