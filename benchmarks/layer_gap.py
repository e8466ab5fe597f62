"""How far a model's generated layers sit from the best single answer their prompts allow, layer by layer.

A prompt fixes a layer's attributes but not where the object starts or the background's phase,
so the truth is one draw out of many that fit it, and no single generated clip can be nearer
to it on average (squared error) than the per-pixel mean of all of them, which still misses by
the draws' spread: the floor. This benchmark estimates that floor for each generated sub-clip
on held-out clips and puts a model beside it. For each clip it draws ``2 x --draws`` same-prompt
worlds from the synthetic recipe's own sampler (:func:`prompt_ceiling.same_prompt_draws`), keeps
the second half as held-out draws, and scores the mean squared error (values in [0, 1]) against
the truth and against each held-out draw (averaged: many draws, less noise than the one truth) of

- ``mean_of_draws``: the per-pixel mean of the first ``--draws``, the best one answer;
- ``still_mean``: that mean averaged over its frames, the best answer that does not move (how much
  of what the prompts say is about motion);
- ``prompt_blind``: the mean of ``--blind-worlds`` worlds of any prompt, the best answer that
  ignores the prompts;
- ``one_draw``: each of the first ``--draws`` alone (averaged), what a perfect sampler scores (about
  twice the floor): the reference for a model that draws one clip per prompt (a flow model);
- ``model``: its layers generated from the clip's prompts;

and per layer the ``floor`` (the draws' spread: the mean of draws' held-out error times n / (n + 1),
as a mean of n draws adds 1/n of it; what a model that returned the exact mean reaches) and the
model's ``learnt`` share, (prompt-blind - model) / (prompt-blind - floor) on held-out errors: 0 for
a one-answer model (a regressor) that ignores its prompts, 1 for one at the floor. The layers are
those the model generates: ``alpha`` (T, H, W), ``fg`` premultiplied (T, H, W, 3; the colour where
the object shows), ``bg`` and ``blend`` (T, H, W, 3); with ``--task fill_background`` (the model
given the clip's foreground and alpha) the background alone, with ``fill_foreground`` (given the
background) alpha and the foreground: the layers a fill makes from its prompt, which the given
ones do not fix, since the recipe draws foreground and background independently. Clips whose
prompts turn up fewer than ``2 x --draws`` times in ``--max-worlds`` worlds are skipped and
counted. Prints one JSON object, then a Markdown table.

    python benchmarks/layer_gap.py --count 16 --draws 16
    python benchmarks/layer_gap.py --run runs/gen-regress-pooled-3000 --step 3000 --count 16 --draws 16
    python benchmarks/layer_gap.py --task fill_background --count 16 --draws 16
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from data_recipes.sample import LayeredSample
from data_recipes.synthetic import (
    BgAttributes,
    FgAttributes,
    held_out_samples,
    render_background,
    render_foreground,
    sample_attributes,
)
from layerflow_model.clip import LayeredClip, composite, premultiply
from layerflow_model.conditioning import TASK_GIVEN_LAYERS, Task
from layerflow_model.metrics import json_safe

from curve_plot import markdown  # beside this script
from generation_sampler import VALIDATION_SEED, generate
from prompt_ceiling import same_prompt_draws
from sampling_scores import add_model_options, pipeline_from_options

LAYERS = ("alpha", "fg", "bg", "blend")
ANSWERS = ("mean_of_draws", "still_mean", "prompt_blind", "one_draw", "model")
TASK_LAYERS = {"generate": LAYERS, "fill_background": ("bg",), "fill_foreground": ("alpha", "fg")}


def layers_of(clip: LayeredClip) -> dict[str, np.ndarray]:
    """A layered clip (values in [0, 1]) -> the scored layers: alpha (T, H, W), the premultiplied foreground,
    the background and the blend (T, H, W, 3); a clip without a blend gets the composite."""
    blend = composite(clip.fg, clip.alpha, clip.bg) if clip.blend is None else clip.blend
    return {"alpha": clip.alpha, "fg": premultiply(clip.fg, clip.alpha), "bg": clip.bg, "blend": blend}


def world_layers(fg: FgAttributes, bg: BgAttributes, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """:func:`layers_of` the clip one world's attributes render at (frames, height, width) ``shape``."""
    return layers_of(LayeredClip(*render_foreground(fg, *shape), bg=render_background(bg, *shape)))


def squared_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference of two same-shape arrays in [0, 1]."""
    return float(np.mean((np.asarray(a, np.float64) - b) ** 2))


def mean_layers(worlds: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-pixel mean of each layer over ``worlds`` (:func:`layers_of` dicts)."""
    return {layer: np.mean([world[layer] for world in worlds], axis=0) for layer in LAYERS}


def still(layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each layer (T, H, W[, 3]) replaced by its mean over the T frames, repeated: the same clip held still."""
    return {name: np.broadcast_to(layer.mean(axis=0), layer.shape) for name, layer in layers.items()}


def clip_gaps(answers: dict[str, Sequence[dict[str, np.ndarray]]], held_out: Sequence[dict[str, np.ndarray]],
              truth: dict[str, np.ndarray], draws: int, layers: Sequence[str] = LAYERS) -> dict[str, dict]:
    """One clip's errors on ``layers``: ``{layer: {answer: {"truth", "held_out"}}}`` of each of ``answers``
    (name -> one or more clips' layers, averaged over them) against ``truth`` and against each of
    ``held_out`` (averaged), and per layer the ``floor`` from the ``"mean_of_draws"`` answer, the mean of
    ``draws`` draws."""
    gaps = {}
    for layer in layers:
        gaps[layer] = {name: {"truth": float(np.mean([squared_error(a[layer], truth[layer]) for a in clips])),
                              "held_out": float(np.mean([squared_error(a[layer], o[layer])
                                                         for a in clips for o in held_out]))}
                       for name, clips in answers.items()}
        gaps[layer]["floor"] = gaps[layer]["mean_of_draws"]["held_out"] * draws / (draws + 1)
    return gaps


def summary(per_clip: Sequence[dict]) -> dict[str, dict]:
    """Per-clip :func:`clip_gaps` averaged over the clips, with each layer's ``learnt`` share: how much of
    the way from the prompt-blind answer to the floor the model's held-out error has come (1: all)."""
    layers = {}
    for layer in per_clip[0]:
        scores = {"floor": float(np.mean([clip[layer]["floor"] for clip in per_clip]))}
        for name in ANSWERS:
            scores[name] = {against: float(np.mean([clip[layer][name][against] for clip in per_clip]))
                            for against in ("truth", "held_out")}
        blind, model = scores["prompt_blind"]["held_out"], scores["model"]["held_out"]
        layers[layer] = {**scores, "learnt": (blind - model) / (blind - scores["floor"])}
    return layers


@dataclass(frozen=True)
class References:
    """What every model on the same clips is scored against: per clip its ``2 x draws`` same-prompt worlds'
    :func:`layers_of` (None for a clip whose prompts turned up too rarely) and the prompt-blind mean."""

    worlds: list[list[dict[str, np.ndarray]] | None]
    prompt_blind: dict[str, np.ndarray]
    draws: int


def same_prompt_references(samples: Sequence[LayeredSample], draws: int, max_worlds: int, blind_worlds: int,
                           seed: int) -> References:
    """Draw ``2 x draws`` same-prompt worlds per clip (at most ``max_worlds`` in all) and a prompt-blind mean
    of ``blind_worlds``, once for any number of models; a clip whose prompts turn up too rarely is named on
    stderr, and ``ValueError`` says what to raise when none is left."""
    shape = samples[0].clip.alpha.shape  # (T, H, W)
    foregrounds, backgrounds = same_prompt_draws({s.prompts.fg for s in samples}, {s.prompts.bg for s in samples},
                                                 2 * draws, max_worlds, shape, np.random.default_rng(seed))
    worlds = []
    for sample in samples:
        fgs, bgs = foregrounds[sample.prompts.fg], backgrounds[sample.prompts.bg]
        if min(len(fgs), len(bgs)) < 2 * draws:
            print(f"skipped {sample.key}: {len(fgs)} foreground and {len(bgs)} background draws match its prompts, "
                  f"{2 * draws} needed", file=sys.stderr)
            worlds.append(None)
        else:
            worlds.append([world_layers(fg, bg, shape) for fg, bg in zip(fgs, bgs)])
    if all(clip is None for clip in worlds):
        raise ValueError(f"no clip's prompts were drawn {2 * draws} times in {max_worlds} worlds: "
                         "raise --max-worlds or lower --draws")
    blind_rng = np.random.default_rng([seed, 1])
    prompt_blind = mean_layers([world_layers(*sample_attributes(blind_rng, *shape), shape)
                                for _ in range(blind_worlds)])
    return References(worlds, prompt_blind, draws)


def gaps_against_draws(samples: Sequence[LayeredSample], made: Sequence[dict[str, np.ndarray]],
                       layers: Sequence[str], references: References) -> list[dict]:
    """:func:`clip_gaps` of each sample's ``made`` layers (one :func:`layers_of` dict per sample) beside the
    reference answers, for the clips ``references`` has worlds for."""
    draws, per_clip = references.draws, []
    for sample, model, worlds in zip(samples, made, references.worlds, strict=True):
        if worlds is None:
            continue
        mean = mean_layers(worlds[:draws])
        answers = {"mean_of_draws": [mean], "still_mean": [still(mean)], "prompt_blind": [references.prompt_blind],
                   "one_draw": worlds[:draws], "model": [model]}
        per_clip.append(clip_gaps(answers, worlds[draws:], layers_of(sample.clip), draws, layers))
    return per_clip


def table(layers: dict[str, dict]) -> str:
    """:func:`summary`'s layers as a Markdown table, a row per layer."""
    return markdown(["layer", "floor", "mean of draws: held-out draws", "truth", "still mean: held-out draws", "truth",
                     "prompt-blind: held-out draws", "truth", "one draw: held-out draws", "truth",
                     "model: held-out draws", "truth", "model over the floor", "learnt"],
                    [[layer, f"{v['floor']:.4f}",
                      *(f"{v[name][against]:.4f}" for name in ANSWERS for against in ("held_out", "truth")),
                      f"{v['model']['held_out'] - v['floor']:+.4f}", f"{v['learnt']:.2f}"]
                     for layer, v in layers.items()])


def add_draw_options(parser: argparse.ArgumentParser) -> None:
    """The held-out clips and same-prompt draws options shared with the benchmarks that reuse this one."""
    parser.add_argument("--count", type=int, default=16, help="held-out clips")
    parser.add_argument("--first-seed", type=int, default=VALIDATION_SEED, help="first held-out seed (1,000,000 ..)")
    parser.add_argument("--draws", type=int, default=16, help="same-prompt draws averaged; as many more held out")
    parser.add_argument("--max-worlds", type=int, default=4_000_000, help="most worlds drawn in all")
    parser.add_argument("--blind-worlds", type=int, default=1024, help="worlds of any prompt in the prompt-blind mean")


def check_draw_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """:func:`add_draw_options` in ``args`` checked; a bad value exits through ``parser.error``."""
    if min(args.count, args.draws, args.blind_worlds) < 1:
        parser.error("--count, --draws and --blind-worlds must be at least 1")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--task", default="generate", choices=list(TASK_LAYERS),
                        help="generate: every layer from the prompts; a fill: the layers it makes, the rest given")
    add_draw_options(parser)
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's for the task)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance (default: the model's for the task)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws and of the model's noise")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    args = parser.parse_args(argv)
    check_draw_options(parser, args)
    torch.set_num_threads(args.threads)

    pipe, label = pipeline_from_options(parser, args)
    shape = (pipe.config.num_frames, pipe.config.height, pipe.config.width)
    try:
        samples = held_out_samples(args.count, *shape, first_seed=args.first_seed)
    except ValueError as error:
        parser.error(f"--first-seed, --count: {error}")
    given_names = [TASK_GIVEN_LAYERS[Task(args.task)]]
    steps = pipe.default_steps(given_names) if args.steps is None else args.steps
    guidance = pipe.default_guidance(given_names) if args.guidance is None else args.guidance
    generated = generate(pipe, samples, steps, guidance, batch_size=16, seed=args.seed, task=args.task)
    try:
        references = same_prompt_references(samples, args.draws, args.max_worlds, args.blind_worlds, args.seed)
    except ValueError as error:
        parser.error(str(error))
    per_clip = gaps_against_draws(samples, [layers_of(clip) for clip in generated], TASK_LAYERS[args.task],
                                  references)
    layers = summary(per_clip)
    print(json.dumps(json_safe({"model": label, "task": args.task, "steps": steps, "guidance": guidance,
                                "clips": args.count, "scored": len(per_clip), "skipped": args.count - len(per_clip),
                                "first_seed": args.first_seed, "draws": args.draws, "held_out_draws": args.draws,
                                "layers": layers})))
    print(table(layers))


if __name__ == "__main__":
    main()
