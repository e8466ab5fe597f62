"""How well a model recovers the clean layers from each noise level, against copying its noisy input.

Encodes ``--count`` synthetic evaluation clips (seeds from ``--first-seed``, never trained on),
noises all four sub-clips to each ``--sigmas`` level (``x = (1 - sigma) x0 + sigma noise``, the
same noise at every level, no layer given: the generation task), and prints one JSON line per
level: the mean squared error of the model's clean latents (its output read as x0, whatever it
predicts) against the true ones, per layer (fg, alpha, bg, blend) and in all, beside the error
of the noisy input itself (what copying it would score). Latents are in [-1, 1]. A flow model
samples its last steps at small sigma, where copying is nearly exact: a model whose error there
is well above the copy's adds that error to every sample it makes. The model is a checkpoint of
a ``quality_vs_steps.py`` run (``--run``, ``--step``, ``--average``) or a saved pipeline
(``--model``; default: the shipped model).

    python benchmarks/denoising_error.py --run runs/gen-flow --count 16 --sigmas 0.01 0.05 0.2 0.5 0.8 1
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch

from data_recipes.synthetic import held_out_samples
from layerflow_model.conditioning import LAYER_ORDER, encode_clips
from layerflow_model.objective import noisy_latents, sample_from_output

from sampling_scores import add_model_options, pipeline_from_options  # beside this script


def per_layer_mse(estimate: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """(B, F, C, h, w) latents, four equal sub-clips on F -> ``{layer: mean squared error}`` and ``all``."""
    squared = ((estimate - truth) ** 2).mean(dim=(0, 2, 3, 4)).reshape(len(LAYER_ORDER), -1).mean(dim=1)  # (4,)
    return dict(zip(LAYER_ORDER, squared.tolist())) | {"all": float(((estimate - truth) ** 2).mean())}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--count", type=int, default=16, help="evaluation clips")
    parser.add_argument("--first-seed", type=int, default=1_000_000, help="first evaluation seed (>= 1,000,000)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0])
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    args = parser.parse_args(argv)
    if not all(0 < sigma <= 1 for sigma in args.sigmas):
        parser.error(f"--sigmas must lie in (0, 1], got {args.sigmas}")
    torch.set_num_threads(args.threads)
    pipe, label = pipeline_from_options(parser, args)

    samples = held_out_samples(args.count, pipe.config.num_frames, pipe.config.height, pipe.config.width,
                               first_seed=args.first_seed)
    clean = encode_clips(pipe.vae, [s.clip for s in samples])  # (B, F, C, h, w)
    prompt_embeds = pipe.encode_prompt([s.prompts for s in samples])  # (B, 3, L, D)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(args.seed))
    nothing_given = torch.zeros(clean.shape[:2], dtype=torch.bool)  # (B, F)
    print(json.dumps({"model": label, "clips": len(samples), "prediction": pipe.config.prediction}), flush=True)
    for level in args.sigmas:
        sigma = torch.full((len(samples),), level)
        noisy = noisy_latents(clean, noise, sigma, nothing_given)
        with torch.no_grad():
            output = pipe.transformer(noisy, prompt_embeds, timestep=sigma * 1000.0, given_frames=nothing_given).sample
        estimate = sample_from_output(output, noisy, sigma, pipe.config.prediction)
        print(json.dumps({"sigma": level, "model_mse": per_layer_mse(estimate, clean),
                          "copy_mse": per_layer_mse(noisy, clean)}), flush=True)


if __name__ == "__main__":
    main()
