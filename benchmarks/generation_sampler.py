"""Generation's sampler: what each number of sampling steps and each guidance scale buys.

Generates layered clips from the prompts of ``--count`` synthetic evaluation clips (seeds from
``--first-seed``, never trained on; the default 1,010,000 keeps the choice apart from the clips
the evaluation reports; a first seed below 1,000,000 takes training clips instead, the ones a
run's shards hold, to see whether a model fits what it trained on) at every ``--steps`` x
``--guidance`` setting, with the same noise for every setting, and scores each as the quality
benchmark does: composite MAE (how far the generated blend is from the generated foreground over
the generated background, in [0, 1]), the alpha area ratio (the area where the generated matte
reaches half the true peak opacity, over the true area: 1 when the foreground shows at the
prompted size and opacity, 0 when it is faint), the matte's travel (pixels its centre moves from
the first frame to the last; the truth's is printed first) and the oracle's attribute accuracy
(colour, shape, direction and pattern read back from the layers, each a share in [0, 1], and
their mean). The model is a checkpoint of a ``quality_vs_steps.py`` run (``--run``, ``--step``,
``--average``) or a saved pipeline (``--model``; default: the shipped model). Prints the ground
truth's accuracy (the oracle's ceiling on these clips), one JSON line per setting, then a
Markdown table; ``--previews DIR`` also draws each setting's first clips beside their truth
(``DIR/steps<S>-guidance<G>/<clip>.png``). ``--encoded-noise`` (a model trained with
``objective.loss`` encoded_noise) starts each clip from the noise its noise encoder reads off the
clip's own layers (the mean it encodes) instead of a standard normal draw: what the sampler makes
when handed each clip's own code, the ceiling of its draws.

    python benchmarks/generation_sampler.py --run runs/gen-flow --count 64 --steps 1 5 10 20 50 --guidance 1 3 6
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from data_recipes.oracle import matte_travel
from data_recipes.sample import LayeredSample
from data_recipes.synthetic import seed_split, synthetic_samples
from layerflow_model import LayeredClip
from layerflow_model.conditioning import encode_clips
from layerflow_model.metrics import json_safe
from layerflow_model.objective import per_clip
from layerflow_model.pipeline import LayerFlowPipeline
from layerflow_model.preview import write_comparison_grid

from curve_plot import markdown  # beside this script
from quality_vs_steps import Scorer
from sampling_scores import add_model_options, pipeline_from_options

VALIDATION_SEED = 1_010_000


@torch.no_grad()
def generate(pipe: LayerFlowPipeline, samples: Sequence[LayeredSample], steps: int, guidance: float,
             batch_size: int, seed: int, task: str = "generate", encoded: bool = False) -> list[LayeredClip]:
    """Layered clips (values in [0, 1]) made from each sample's prompts alone (``task`` generate) or from its
    prompts and the layers ``task`` is given of its clip (a fill), ``batch_size`` at a time, the noise of
    every batch drawn from one generator seeded ``seed``, or with ``encoded`` each clip's :func:`encoded_noise`."""
    generator = torch.Generator().manual_seed(seed)
    clips: list[LayeredClip] = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start:start + batch_size]
        given = None if task == "generate" else [s.clip for s in batch]
        clips += pipe([s.prompts for s in batch], given=given, task=task, num_inference_steps=steps,
                      guidance_scale=guidance, generator=generator,
                      latents=encoded_noise(pipe, batch) if encoded else None).clips
    return clips


@torch.no_grad()
def encoded_noise(pipe: LayerFlowPipeline, samples: Sequence[LayeredSample]) -> torch.Tensor:
    """(B, F, C, h, w) per-clip noise: the mean the model's noise encoder reads off each sample's own layers."""
    clean = encode_clips(pipe.vae, [s.clip for s in samples]).to(pipe.transformer.dtype)  # (B, F, C, h, w)
    mean, _ = pipe.transformer.noise_encoder(clean)  # (B, C)
    return per_clip(mean, clean.shape)


def mean_travel(clips: Sequence[LayeredClip]) -> float:
    """Mean over clips (NaN ones left out) of :func:`~data_recipes.oracle.matte_travel`, in pixels."""
    return float(np.nanmean([matte_travel(clip.alpha) for clip in clips]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--count", type=int, default=64, help="clips generated and scored")
    parser.add_argument("--first-seed", type=int, default=VALIDATION_SEED,
                        help="first seed: evaluation clips from 1,000,000, training clips below")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5, 10, 20, 50], help="sampling steps to try")
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 3.0, 6.0], help="guidance scales to try")
    parser.add_argument("--batch-size", type=int, default=16, help="clips sampled at once")
    parser.add_argument("--seed", type=int, default=0, help="noise seed, the same for every setting")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--previews", type=Path, default=None,
                        help="write each setting's first --preview-count clips beside their truth as PNGs here")
    parser.add_argument("--preview-count", type=int, default=2)
    parser.add_argument("--encoded-noise", action="store_true",
                        help="start each clip from the noise the model's noise encoder reads off its own layers")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    pipe, label = pipeline_from_options(parser, args)
    if args.encoded_noise and pipe.transformer.noise_encoder is None:
        parser.error("--encoded-noise: this model has no noise encoder (train one with objective.loss encoded_noise)")
    try:
        split = seed_split(args.first_seed)
        samples = synthetic_samples(args.count, pipe.config.num_frames, pipe.config.height, pipe.config.width,
                                    args.first_seed, split)
    except ValueError as error:
        parser.error(f"--first-seed, --count: {error}")
    scorer = Scorer(samples)
    truth = scorer.attribute_accuracy([s.clip for s in samples])
    print(json.dumps({"model": label, "clips": len(samples), "first_seed": args.first_seed, "split": split,
                      "ground_truth_accuracy": truth,
                      "ground_truth_travel_px": mean_travel([s.clip for s in samples])}), flush=True)

    rows = []
    for steps in args.steps:
        for guidance in args.guidance:
            start = time.perf_counter()
            clips = generate(pipe, samples, steps, guidance, args.batch_size, args.seed, encoded=args.encoded_noise)
            seconds = (time.perf_counter() - start) / len(samples)
            attributes = scorer.attribute_accuracy(clips)  # the oracle reads each clip once
            row = {"steps": steps, "guidance": guidance, **scorer.layer_scores(clips),
                   "travel_px": mean_travel(clips), "oracle_accuracy": float(np.mean(list(attributes.values()))),
                   "attributes": attributes, "seconds_per_clip": seconds}
            print(json.dumps(json_safe(row)), flush=True)
            rows.append(row)
            if args.previews is not None:
                for sample, clip in list(zip(samples, clips))[:args.preview_count]:
                    write_comparison_grid(args.previews / f"steps{steps}-guidance{guidance:g}" / f"{sample.key}.png",
                                          sample.clip, clip, scale=2)
    names = list(truth)
    print(markdown(["steps", "guidance", "composite MAE", "alpha area ratio", "travel (px)", "oracle accuracy", *names,
                    "s per clip"],
                   [[str(row["steps"]), f"{row['guidance']:g}", f"{row['composite_mae']:.3f}",
                     f"{row['alpha_area_ratio']:.2f}", f"{row['travel_px']:.1f}",
                     f"{row['oracle_accuracy']:.2f}", *(f"{row['attributes'][a]:.2f}" for a in names),
                     f"{row['seconds_per_clip']:.2f}"] for row in rows]))


if __name__ == "__main__":
    main()
