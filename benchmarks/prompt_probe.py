"""How much of each layer a linear map from the prompts recovers: a ridge-regression probe beside the model.

The transformer reads its prompts through a text encoder; whether what it misses of a layer
(:mod:`layer_gap`) is missing from the encoded prompts or only not learnt from them is what this
probe tells. It encodes each training clip's three prompts with the model's own tokenizer and
encoder and pools them as the transformer's ``pooled_prompts`` does (each prompt's mean token,
the three side by side: (N, 3 x D)), standardises them, and fits scikit-learn's ridge regression
from them to the clip's layers (alpha, premultiplied foreground, background, blend; every pixel
of the clip an output in [0, 1]) on ``--train-clips`` training clips (seeds 0 ..). The ridge
strength is the one of ``--alphas`` with the least squared error on the last ``--holdout`` share
of those clips, refitted on them all. Its predictions (clipped to [0, 1]) on the held-out clips
are then scored exactly as ``layer_gap.py`` scores a model's generated layers (error against
held-out same-prompt draws, beside the floor, the prompt-blind mean and the learnt share), and
as a generated clip is (``generation_sampler.py``: composite MAE, alpha area ratio, the matte's
travel in pixels, the oracle's attribute accuracy). ``--ranks`` scores the same with the
coefficients truncated to each rank (their largest singular values): a readout through r
numbers (prompts -> r -> layers) made from the probe. Prints the strength sweep and one JSON
object, then a Markdown table; with ``--ranks`` a JSON line per rank and their table.

    python benchmarks/prompt_probe.py --train-clips 5000 --count 16 --draws 16
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import Ridge

from data_recipes.sample import LayeredSample
from data_recipes.synthetic import held_out_samples, synthetic_samples
from layerflow_model.clip import LayeredClip, unpremultiply
from layerflow_model.metrics import json_safe
from layerflow_model.pipeline import LayerFlowPipeline
from layerflow_model.text_encoders import encode_layer_prompts

from curve_plot import markdown  # beside this script
from generation_sampler import mean_travel
from layer_gap import (
    LAYERS,
    References,
    add_draw_options,
    check_draw_options,
    gaps_against_draws,
    layers_of,
    same_prompt_references,
    summary,
    table,
)
from quality_vs_steps import Scorer
from sampling_scores import add_model_options, pipeline_from_options


@torch.no_grad()
def pooled_prompts(pipe: LayerFlowPipeline, samples: Sequence[LayeredSample], batch_size: int = 256) -> np.ndarray:
    """The samples' fg, bg and blend prompts through the model's encoder, each prompt's tokens averaged as the
    transformer's ``pooled_prompts`` does: (N, 3 x D) float32."""
    pooled = []
    for start in range(0, len(samples), batch_size):
        prompts = [s.prompts for s in samples[start:start + batch_size]]
        embeds = encode_layer_prompts(pipe.tokenizer, pipe.text_encoder, prompts, pipe.tokens_per_prompt)
        pooled.append(embeds.mean(dim=2).flatten(1).cpu().numpy())  # (B, 3, L, D) -> (B, 3 x D)
    return np.concatenate(pooled).astype(np.float32)


def flat_layers(samples: Sequence[LayeredSample]) -> np.ndarray:
    """Each sample's :func:`layer_gap.layers_of` layers flattened side by side: (N, pixels of all layers) in [0, 1]."""
    return np.stack([np.concatenate([layers_of(s.clip)[layer].ravel() for layer in LAYERS]) for s in samples])


def unflatten(row: np.ndarray, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inverse of one row of :func:`flat_layers`, shaped as the layers ``like``."""
    layers, start = {}, 0
    for layer in LAYERS:
        size = like[layer].size
        layers[layer] = row[start:start + size].reshape(like[layer].shape)
        start += size
    return layers


def fit_probe(features: np.ndarray, targets: np.ndarray, alphas: Sequence[float],
              holdout: float) -> tuple[Ridge, dict[float, float]]:
    """Ridge regression from ``features`` (N, F) to ``targets`` (N, P): each of ``alphas`` fitted on the first
    ``1 - holdout`` of the rows and scored (mean squared error) on the rest, the best refitted on all rows.
    Returns the fitted model and ``{alpha: held-out error}``."""
    split = int(round(len(features) * (1 - holdout)))
    errors = {}
    for alpha in alphas:
        fitted = Ridge(alpha=alpha).fit(features[:split], targets[:split])
        errors[alpha] = float(np.mean((fitted.predict(features[split:]) - targets[split:]) ** 2))
    best = min(errors, key=errors.get)
    return Ridge(alpha=best).fit(features, targets), errors


def low_rank_predictions(probe: Ridge, features: np.ndarray, ranks: Sequence[int]) -> dict[int, np.ndarray]:
    """The probe's predictions for ``features`` (N, F) with its coefficients (P, F) truncated to each of
    ``ranks`` largest singular values, a readout through r numbers (F -> r -> P): {rank: (N, P)}."""
    u, s, vt = np.linalg.svd(probe.coef_, full_matrices=False)
    return {rank: features @ (vt[:rank].T * s[:rank]) @ u[:, :rank].T + probe.intercept_ for rank in ranks}


def scores_of(samples: Sequence[LayeredSample], predicted: np.ndarray, scorer: Scorer,
              references: References) -> dict:
    """Predicted flat layers (N, P), clipped to [0, 1], scored as a generation (composite MAE, alpha area
    ratio, travel, oracle; ``scorer`` of ``samples``) and against ``references`` (``layers``)."""
    made = [unflatten(row, layers_of(sample.clip)) for row, sample in zip(np.clip(predicted, 0, 1), samples)]
    clips = [LayeredClip(fg=unpremultiply(m["fg"], m["alpha"]), alpha=m["alpha"], bg=m["bg"], blend=m["blend"])
             for m in made]
    attributes = scorer.attribute_accuracy(clips)
    per_clip = gaps_against_draws(samples, made, LAYERS, references)
    return {**scorer.layer_scores(clips), "travel_px": mean_travel(clips),
            "oracle_accuracy": float(np.mean(list(attributes.values()))), "attributes": attributes,
            "scored": len(per_clip), "layers": summary(per_clip)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--train-clips", type=int, default=5000, help="training clips the probe is fitted on")
    parser.add_argument("--alphas", type=float, nargs="+", default=[1, 10, 100, 1000, 10000],
                        help="ridge strengths to try (on standardised features)")
    parser.add_argument("--holdout", type=float, default=0.1,
                        help="share of the training clips that picks the strength")
    parser.add_argument("--ranks", type=int, nargs="*", default=[],
                        help="also score the coefficients truncated to each rank (a low-rank readout)")
    add_draw_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    args = parser.parse_args(argv)
    check_draw_options(parser, args)
    if not 0 < args.holdout < 1 or args.train_clips * args.holdout < 1:
        parser.error("--holdout must be in (0, 1) and leave at least one of --train-clips held out")
    if any(rank < 1 for rank in args.ranks):
        parser.error("--ranks must be at least 1")
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    pipe, label = pipeline_from_options(parser, args)
    shape = (pipe.config.num_frames, pipe.config.height, pipe.config.width)
    try:
        train = synthetic_samples(args.train_clips, *shape, first_seed=0, split="train")
        samples = held_out_samples(args.count, *shape, first_seed=args.first_seed)
    except ValueError as error:
        parser.error(f"--train-clips, --first-seed, --count: {error}")
    features = pooled_prompts(pipe, train)
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    probe, errors = fit_probe((features - mean) / scale, flat_layers(train), args.alphas, args.holdout)
    print(json.dumps({"alpha_sweep": errors, "alpha": probe.alpha}), flush=True)
    try:
        references = same_prompt_references(samples, args.draws, args.max_worlds, args.blind_worlds, args.seed)
    except ValueError as error:
        parser.error(str(error))
    scorer = Scorer(samples)
    held_out_features = (pooled_prompts(pipe, samples) - mean) / scale
    scores = scores_of(samples, probe.predict(held_out_features), scorer, references)
    print(json.dumps(json_safe({"encoder": label, "train_clips": args.train_clips, "alpha": probe.alpha,
                                "clips": args.count, "skipped": args.count - scores["scored"],
                                "first_seed": args.first_seed, "draws": args.draws, **scores,
                                "seconds": time.perf_counter() - start})), flush=True)
    layers = scores["layers"]
    print(table(layers))
    rows = []
    for rank, predicted in low_rank_predictions(probe, held_out_features, args.ranks).items():
        ranked = scores_of(samples, predicted, scorer, references)
        print(json.dumps(json_safe({"rank": rank, **ranked})), flush=True)
        rows.append([str(rank), *(f"{ranked['layers'][layer]['learnt']:.2f}" for layer in LAYERS),
                     f"{ranked['travel_px']:.1f}", f"{ranked['oracle_accuracy']:.2f}"])
    if rows:
        print(markdown(["rank", *(f"{layer} learnt" for layer in LAYERS), "travel (px)", "oracle accuracy"], rows))


if __name__ == "__main__":
    main()
