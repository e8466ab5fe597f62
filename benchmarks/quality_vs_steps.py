"""Layer quality against training steps: does a model config learn to separate layers, and how fast?

Trains the ``base`` stage through the project's own loop (:func:`layerflow_model.training.train_stage`)
on synthetic shards, and at every ``--eval-every`` steps (each checkpoint) loads the checkpoint's
weights and scores held-out synthetic seeds (>= 1,000,000) with the project's metrics:

- decomposition (blend given; the config's ``sampler.decompose_steps`` and ``decompose_guidance``): alpha IoU,
  alpha MAD (x 1e3), background PSNR and premultiplied foreground PSNR (dB);
- generation (no layer given; ``sampler.generate_steps`` and ``generate_guidance``): composite
  MAE (how well fg over bg rebuilds the blend) and the oracle's attribute accuracy (mean of
  colour, shape, direction, pattern read back from the layers, against the prompted values);
- ``seconds``: training time so far (evaluation excluded) and ``samples_per_s``.

With ``--ema-decay`` the stage keeps a moving average of its weights (``ema_decay``), and each
checkpoint's average is scored too, as ``ema_<metric>``: the last and the averaged weights of one
training run compared at every step.

The median and classical decompositions (:mod:`data_recipes.baselines`) are scored on the same
clips. One JSON line per evaluation; the last line is ``{"curve": [...], "baselines": {...}, ...}``.
``OUT/curve.png`` plots each metric against steps with the baselines as horizontal lines; the
curve goes to MLflow (``step=`` per evaluation) in the ``layerflow`` experiment of ``--tracking``
(default ``OUT``; point several runs at one folder, or set ``MLFLOW_TRACKING_URI``, to compare them).

A progress bar on stderr shows the training steps. ``OUT/progress.json`` keeps the MLflow run, the
settings and the points scored so far, rewritten whole at every checkpoint, so a run stopped part
way (a lost machine, Ctrl-C) continues with the same command plus ``--resume``: training resumes
from the newest checkpoint (scoring it first if the stop came before its point was written) and
the curve and MLflow run carry on; a setting that differs from the stopped run's is refused by name.

    python benchmarks/quality_vs_steps.py --config small --steps 400 --eval-every 100 --out runs/velocity \\
        --tracking runs --set objective.prediction=velocity --set objective.one_step_fraction=0 \\
        --set sampler.num_inference_steps=20
    python benchmarks/quality_vs_steps.py --config small --steps 400 --eval-every 100 --out runs/one-step \\
        --tracking runs --set objective.one_step_fraction=0.5 \\
        --set sampler.decompose_steps=1 --set sampler.fill_steps=1 --set sampler.generate_steps=8
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import yaml
from mlflow.exceptions import MlflowException
from safetensors.torch import load_file
from tqdm import tqdm

from data_recipes.baselines import make_baseline
from data_recipes.build import build
from data_recipes.oracle import SyntheticOracle, accuracy, truth_of
from data_recipes.registry import make_recipe, recipe_config
from data_recipes.sample import LayeredSample
from data_recipes.synthetic import held_out_samples
from layerflow_model import LayeredClip
from layerflow_model.callbacks import NoCallbacks
from layerflow_model.checkpoint import TRAINABLE_FILE, latest_checkpoint
from layerflow_model.config import ModelConfig, with_overrides
from layerflow_model.factory import build_pipeline
from layerflow_model.metrics import json_safe, score_clip, summarize
from layerflow_model.pipeline import LayerFlowPipeline
from layerflow_model.train_config import StageConfig, TaskMixture, load_model_config
from layerflow_model.training import train_stage
from layerflow_model.video_io import write_text_atomic
from layerflow_model.weight_average import EMA_FILE
from tasks.tracking import MlflowCallbacks, close_run, flat_params, open_run, tracking_for

from curve_plot import plot_curves, series_of  # benchmarks/curve_plot.py, beside this script

BASELINES = ("median", "classical")
DECOMPOSITION_METRICS = ("alpha_iou", "alpha_mad", "bg_psnr", "fg_psnr")
GENERATION_LAYER_METRICS = ("composite_mae", "alpha_area_ratio")  # of the generated layers alone, besides the oracle
PROGRESS_FILE = "progress.json"


#################################################################################
#                                    Inputs                                     #
#################################################################################


def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    """``["objective.prediction=sample", "transformer.num_layers=4"]`` -> ``{key: YAML-parsed value}``."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected key=value with a dotted key, e.g. objective.prediction=sample")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


#################################################################################
#                                    Scoring                                    #
#################################################################################


class Scorer:
    """Scores decompositions and generations of one fixed set of held-out samples."""

    def __init__(self, samples: Sequence[LayeredSample]) -> None:
        self.samples = list(samples)
        self.oracle = SyntheticOracle(self.samples[0].clip.num_frames, *self.samples[0].clip.size)
        self.truths = [truth_of(s.extra["attributes"]) for s in self.samples]

    def decomposition_per_clip(self, clips: Sequence[LayeredClip]) -> dict[str, dict[str, float]]:
        """``{sample key: {metric: value}}`` for the DECOMPOSITION_METRICS of each decomposition against its truth."""
        scores = {s.key: score_clip(c, s.clip) for s, c in zip(self.samples, clips, strict=True)}
        return {key: {m: clip_scores[m] for m in DECOMPOSITION_METRICS} for key, clip_scores in scores.items()}

    def decomposition(self, clips: Sequence[LayeredClip]) -> dict[str, float]:
        """Mean (finite values) alpha_iou, alpha_mad, bg_psnr, fg_psnr of decompositions against the truth."""
        return summarize(self.decomposition_per_clip(clips))["mean"]

    def attribute_accuracy(self, clips: Sequence[LayeredClip]) -> dict[str, float]:
        """``{attribute: share in [0, 1]}``: how often the oracle reads each prompted attribute back from the clips."""
        return accuracy([self.oracle.read(c) for c in clips], self.truths)

    def layer_scores(self, clips: Sequence[LayeredClip]) -> dict[str, float]:
        """Mean (finite values) of each of GENERATION_LAYER_METRICS over generated clips: composite_mae in [0, 1]
        and alpha_area_ratio (1 when the foreground shows at its prompted size and opacity, 0 when faint)."""
        means = summarize({s.key: score_clip(c, s.clip) for s, c in zip(self.samples, clips, strict=True)})["mean"]
        return {m: means[m] for m in GENERATION_LAYER_METRICS}

    def generation(self, clips: Sequence[LayeredClip]) -> dict[str, float]:
        """Mean composite_mae of generated clips, and the oracle's accuracy in [0, 1] (mean over attributes)."""
        return {"composite_mae": self.layer_scores(clips)["composite_mae"],
                "oracle_accuracy": float(np.mean(list(self.attribute_accuracy(clips).values())))}

    def all_metrics(self, clips: Sequence[LayeredClip]) -> dict[str, float]:
        """Every curve metric for one set of clips (a baseline's decompositions)."""
        return self.decomposition(clips) | self.generation(clips)


def score_baselines(scorer: Scorer) -> dict[str, dict[str, float]]:
    """The curve metrics of each baseline's decomposition of the held-out blends, and of the ground truth."""
    scores = {name: scorer.all_metrics([make_baseline(name).decompose(s.clip.blend) for s in scorer.samples])
              for name in BASELINES}
    return scores | {"ground_truth": scorer.generation([s.clip for s in scorer.samples])}


def load_weights(pipe: LayerFlowPipeline, weights: Path) -> None:
    """Load a base-stage safetensors file (every transformer parameter) into ``pipe`` for evaluation."""
    pipe.transformer.load_state_dict(load_file(weights))
    pipe.transformer.eval()


@torch.no_grad()
def decompose_held_out(pipe: LayerFlowPipeline, samples: Sequence[LayeredSample], seed: int) -> list[LayeredClip]:
    """Decompose each sample's blend with the config's decomposition steps and guidance, one pass (no
    mirrored passes, no compositing refinement) and fixed noise ``seed`` (so checkpoints and runs
    compare): one layered clip per sample, values in [0, 1]."""
    return pipe([s.prompts for s in samples], given=[s.clip for s in samples], task="decompose",
                generator=torch.Generator().manual_seed(seed), flip_average=False,
                refine_alpha=False).clips


@torch.no_grad()
def evaluate(pipe: LayerFlowPipeline, scorer: Scorer, seed: int) -> dict[str, float]:
    """Decompose every held-out blend and generate from every held-out prompt, with the config's
    per-task steps and guidance and fixed noise (so checkpoints compare); the curve metrics."""
    generated = pipe([s.prompts for s in scorer.samples], generator=torch.Generator().manual_seed(seed)).clips
    return scorer.decomposition(decompose_held_out(pipe, scorer.samples, seed)) | scorer.generation(generated)


#################################################################################
#                          Evaluating every checkpoint                          #
#################################################################################


class QualityCurve(NoCallbacks):
    """Training callbacks: training steps go to MLflow and a progress bar; each checkpoint is scored, printed,
    logged and saved to ``progress`` (with the MLflow run id and the run's ``settings``) for ``--resume``."""

    def __init__(self, pipe: LayerFlowPipeline, scorer: Scorer, seed: int, samples_per_step: int,
                 mlflow: MlflowCallbacks, progress: Path, settings: dict, steps: int) -> None:
        self.pipe, self.scorer, self.seed = pipe, scorer, seed
        self.samples_per_step, self.mlflow = samples_per_step, mlflow
        self.progress, self.settings = progress, settings
        self.step, self.train_seconds, self.window = 0, 0.0, []  # window: samples/s since the last evaluation
        self.logged_through = 0  # training steps at or before it are in MLflow already (a resumed run redoes them)
        self.curve: list[dict] = []
        self.bar = tqdm(total=steps, desc="training", unit="step", file=sys.stderr)

    def restore(self, saved: dict) -> None:
        """Carry on from a stopped run's ``progress.json``: its points and training seconds; the steps it logged
        to MLflow after its newest checkpoint are trained again but not logged twice."""
        self.curve, self.train_seconds = saved["curve"], saved["train_seconds"]
        logged = self.mlflow.client.get_metric_history(self.mlflow.run_id, "loss")
        self.logged_through = max((metric.step for metric in logged), default=0)

    def save(self) -> None:
        """Rewrite ``progress.json`` whole: MLflow run id, settings, points so far, training seconds."""
        state = {"run_id": self.mlflow.run_id, "settings": self.settings, "curve": self.curve,
                 "train_seconds": self.train_seconds}
        write_text_atomic(self.progress, json.dumps(json_safe(state), indent=1))

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.step = step
        if "samples_per_s" in metrics:
            self.window.append(metrics["samples_per_s"])
            self.train_seconds += self.samples_per_step / metrics["samples_per_s"]
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{metrics['loss']:.3g}", refresh=False)
        if step > self.logged_through:
            self.mlflow.on_step(step, metrics)

    def score_weights(self, weights: Path) -> dict[str, float]:
        """The curve metrics of the transformer with ``weights`` (a base-stage safetensors file: every parameter)."""
        load_weights(self.pipe, weights)
        return evaluate(self.pipe, self.scorer, self.seed)

    def on_checkpoint(self, path: Path) -> None:
        self.save()  # the training seconds up to this checkpoint, in case the run stops while scoring it
        tic = time.perf_counter()
        point = {"step": self.step, **self.score_weights(Path(path) / TRAINABLE_FILE), "seconds": self.train_seconds}
        if (Path(path) / EMA_FILE).is_file():
            point |= {f"ema_{k}": v for k, v in self.score_weights(Path(path) / EMA_FILE).items()}
        self.curve.append(point)
        self.save()
        extra = {"samples_per_s": float(np.mean(self.window)) if self.window else math.nan,
                 "eval_seconds": time.perf_counter() - tic}
        self.window = []
        tqdm.write(json.dumps(json_safe(point | extra)), file=sys.stdout)
        sys.stdout.flush()
        self.mlflow.on_step(self.step, {k: v for k, v in (point | extra).items() if k != "step" and math.isfinite(v)})

    def score_unscored(self, train_dir: Path) -> None:
        """Score the newest checkpoint in ``train_dir`` if the curve lacks it (a run stopped while scoring it)."""
        found = latest_checkpoint(train_dir)
        if found is not None and found[0] not in {point["step"] for point in self.curve}:
            self.step = found[0]
            self.on_checkpoint(found[1])
        self.bar.update((found[0] if found else 0) - self.bar.n)


#################################################################################
#                                 Training data                                 #
#################################################################################


def build_shards(model_config: ModelConfig, count: int, out: Path) -> None:
    """Training shards of synthetic seeds 0 .. count-1 at the model's clip shape in ``out`` (reused when built)."""
    clip = model_config.clip
    build(make_recipe(recipe_config("synthetic", count=count, frames=clip.num_frames, height=clip.height,
                                    width=clip.width)), out)


#################################################################################
#                                   Resuming                                    #
#################################################################################


def run_settings(model_config: ModelConfig, stage: StageConfig, eval_clips: int, train_clips: int) -> dict:
    """What a resumed run must share with the run it continues: model, stage recipe, evaluation and training sets
    (as JSON values, so a saved copy compares equal)."""
    stage_recipe = stage.identity() | {"model": stage.model}  # the model compares whole under "model"
    settings = {"model": model_config.model_dump(mode="json"), "stage": stage_recipe,
                "eval_clips": eval_clips, "train_clips": train_clips}
    return json.loads(json.dumps(json_safe(settings)))


def changed_settings(saved: dict, current: dict) -> list[str]:
    """Dotted names of the settings whose values differ, e.g. ``["stage.lr", "model.objective.shift"]``.

    The saved model is read back as a :class:`ModelConfig` first, so a model field added since the run was saved
    compares at its default (the behaviour the run had) instead of as changed."""
    saved = saved | {"model": ModelConfig.model_validate(saved["model"]).model_dump(mode="json")}
    before, after = flat_params(saved), flat_params(current)
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="small", help="model preset name or a model config JSON/YAML file "
                        "(a whole ModelConfig, or preset and set)")
    parser.add_argument("--steps", type=int, required=True, help="training steps")
    parser.add_argument("--eval-every", type=int, required=True, help="steps between evaluations")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", type=Path, required=True, help="output folder (must not hold a run already)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model-config field by dotted key, e.g. objective.prediction=sample")
    parser.add_argument("--task-mixture", dest="mixture", action="append", default=[], metavar="TASK=WEIGHT",
                        help="training task weight, e.g. decompose=3 (unset tasks weigh 1)")
    parser.add_argument("--eval-clips", type=int, default=8, help="held-out synthetic clips")
    parser.add_argument("--train-clips", type=int, default=512, help="synthetic training clips")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ema-decay", type=float, default=None,
                        help="keep a moving average of the weights (stage ema_decay) and score it too")
    parser.add_argument("--keep-checkpoints", type=int, default=2,
                        help="newest checkpoints kept on disk, for benchmarks/checkpoint_clips.py (each is the weights "
                             "and optimizer state)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--data", type=Path, default=None, help="shard folder, shared between runs (default OUT/data)")
    parser.add_argument("--tracking", type=Path, default=None, help="MLflow store folder (default OUT)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run stopped in --out from its newest checkpoint, with the same settings "
                             "(or start it, if --out holds none)")
    args = parser.parse_args(argv)

    # 1. Configs: the model (with overrides, validated) and the base stage
    torch.set_num_threads(args.threads)
    out = args.out.resolve()
    progress = out / PROGRESS_FILE
    saved = json.loads(progress.read_text()) if progress.is_file() else None
    holds_run = saved is not None or (out / "train" / "checkpoints").exists()
    if holds_run and not args.resume:
        parser.error(f"--out {out} already holds a training run; choose a new folder, or --resume to continue it")
    if holds_run and saved is None:
        parser.error(f"--resume: {out} holds checkpoints but no {PROGRESS_FILE} (a run from before --resume); "
                     "it cannot be continued")
    try:
        model_config = with_overrides(load_model_config(args.config), parse_overrides(args.overrides))
        mixture = TaskMixture(**parse_overrides(args.mixture))
    except ValueError as error:  # pydantic's ValidationError too: names the field
        parser.error(str(error))
    out.mkdir(parents=True, exist_ok=True)
    model_file = out / "model_config.json"
    if saved is None:  # a resumed run keeps its own: checkpoint_clips.py reads it, and a changed model is refused below
        write_text_atomic(model_file, model_config.model_dump_json(indent=1))  # the stage reads and validates it
    data = (args.data or out / "data").resolve()
    try:
        stage = StageConfig(stage="base", model=str(model_file), out_dir=out / "train", data=[data], steps=args.steps,
                            batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
                            checkpoint_every=args.eval_every, preview_count=0, device=args.device, seed=args.seed,
                            task_mixture=mixture, ema_decay=args.ema_decay, keep_checkpoints=args.keep_checkpoints)
    except ValueError as error:  # names the stage field (keep_checkpoints, lr, ...) before any shard is built
        parser.error(str(error))
    settings = run_settings(model_config, stage, args.eval_clips, args.train_clips)
    try:
        changed = changed_settings(saved["settings"], settings) if saved is not None else []
    except ValueError as error:  # pydantic's ValidationError: the saved model names a field this version lacks
        parser.error(f"--resume: {progress} holds a model config this version cannot read: {error}")
    if changed:
        parser.error(f"--resume: settings differ from the stopped run in {out}: {', '.join(changed)}; "
                     "resume with its settings")
    build_shards(model_config, args.train_clips, data)

    # 2. Held-out clips, baselines, the evaluation pipeline (the training pipeline's text encoder: same seed)
    clip = model_config.clip
    scorer = Scorer(held_out_samples(args.eval_clips, clip.num_frames, clip.height, clip.width))
    baselines = score_baselines(scorer)
    print(json.dumps(json_safe({"baselines": baselines})), flush=True)
    pipe = build_pipeline(model_config, seed=args.seed).to(args.device)
    pipe.set_progress_bar_config(disable=True)

    # 3. Train, scoring every checkpoint, in one MLflow run
    tracking = tracking_for((args.tracking or out).resolve())
    if saved is None:
        run_id = open_run(tracking, f"quality-{model_config.name}", flat_params(settings),
                          {"layerflow.benchmark": "quality_vs_steps"})
    else:
        run_id = saved["run_id"]
        try:
            tracking.client().update_run(run_id, status="RUNNING")
        except MlflowException as error:
            parser.error(f"--resume: the stopped run's MLflow run {run_id} is not in {tracking.uri} ({error}); "
                         "pass the --tracking it was started with")
    mlflow = MlflowCallbacks(tracking, run_id)
    curve = QualityCurve(pipe, scorer, args.seed, args.batch_size, mlflow, progress, settings, args.steps)
    try:
        if saved is None:
            curve.save()
            mlflow.on_step(0, {f"{name}.{k}": v for name, s in baselines.items() for k, v in s.items()
                               if math.isfinite(v)})
        else:
            curve.restore(saved)
            curve.score_unscored(stage.out_dir)
        train_stage(stage, curve)
        curve.bar.close()
        recipe = [f"{args.steps} steps", f"batch {args.batch_size}", f"lr {args.lr:g}", *args.overrides, *args.mixture]
        if args.ema_decay is not None:
            recipe.append(f"ema_decay={args.ema_decay:g}")
        plot_curves(out / "curve.png", series_of("model", curve.curve, average_label="moving average"), baselines,
                    f"{model_config.name}: {', '.join(recipe)}")
        result = {"curve": curve.curve, "baselines": baselines, "s_per_step": curve.train_seconds / args.steps,
                  "samples_per_s": args.steps * args.batch_size / curve.train_seconds,
                  "overrides": args.overrides, "stage": stage.identity(), "model_config": model_config.model_dump(mode="json")}
        write_text_atomic(out / "curve.json", json.dumps(json_safe(result), indent=1))  # compare_curves reads it
        mlflow.client.log_artifact(run_id, str(out / "curve.png"))
        mlflow.client.log_artifact(run_id, str(out / "curve.json"))
    except BaseException:
        close_run(tracking, run_id, "FAILED")
        raise
    close_run(tracking, run_id, "FINISHED")
    print(json.dumps(json_safe(result)), flush=True)


if __name__ == "__main__":
    main()
