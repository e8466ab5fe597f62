"""The training loop of the three stages (base, motion LoRA, content LoRA) on accelerate.

:func:`train_stage` reads top to bottom like nanoGPT's loop: learning rate, eval and
checkpoint, micro-steps, clip, step, log, stop. Inputs are precomputed once per shard set
(:mod:`.latent_cache`); each micro-batch draws its samples, task (from the task mixture),
text dropout and noise from a generator seeded by (seed, step, micro-step, process), so a
resumed run continues exactly where the checkpoint left it. Reporting goes through
:class:`~.callbacks.TrainCallbacks`; this module imports no tracker.

Run one stage from a config file: ``python -m layerflow_model.training STAGE_CONFIG.yaml``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from pydantic import ValidationError

from .callbacks import LoggingCallbacks, NoCallbacks, StageArtifacts, TrainCallbacks
from .checkpoint import (
    keep_trainable_only,
    latest_checkpoint,
    load_checkpoint,
    remove_partial_checkpoints,
    save_checkpoint,
)
from .conditioning import TASK_GIVEN_LAYERS, Task, frame_mask, given_mask
from .config import ModelConfig
from .export import export_adapter, export_inference_model, export_model, sample_prompts, write_samples
from .factory import build_pipeline
from .latent_cache import LatentCache, load_or_build_cache
from .lora import CONTENT, MOTION, add_adapter, load_adapter, set_motion_scale
from .motion_check import motion_check
from .objective import objective_loss, training_terms
from .pipeline import LayerFlowPipeline
from .train_config import STAGE_PATH_FIELDS, StageConfig, load_model_config, read_stage_config
from .transformer import STOCK_LACKS_WEIGHTS, noise_encoder_frames
from .video_io import write_text_atomic
from .weight_average import TrainableAverage

log = logging.getLogger(__name__)

CONFIG_FILE = "stage_config.json"
MODEL_CONFIG_FILE = "model_config.json"  # the model config the stage trained under, whatever file named it
MIN_LR_RATIO = 0.1  # cosine decay ends at lr / 10
EVAL_STREAM = 2**40  # generator counters of the fixed eval batches, apart from any step number


#################################################################################
#                        Model, adapters, trainable weights                     #
#################################################################################


def stage_pipeline(config: StageConfig, model_config: ModelConfig) -> LayerFlowPipeline:
    """The pipeline a stage starts from, with the stage's adapters attached.

    base: fresh weights (or ``init_from``, given a new prompt readout when the stage trains one and the
    model has none, a new noise encoder when the objective needs one and the model has none, and a new
    noise code conditioning when the model config asks for it and the model has none); motion:
    the base model plus a new motion LoRA; content: the base model, the trained motion LoRA, and a new
    content LoRA.
    """
    if config.init_from is None:
        pipe = build_pipeline(model_config, seed=config.seed)
    else:  # it samples as this stage trains it: what it predicts, from which noise
        pipe = LayerFlowPipeline.from_pretrained(config.init_from)
        pipe.register_to_config(prediction=model_config.objective.prediction, noise=model_config.objective.noise)
    latent_frames = pipe.vae.latent_frames(model_config.clip.num_frames)  # of one sub-clip
    if config.trainable == "prompt_readout" and pipe.transformer.prompt_readout is None:
        torch.manual_seed(config.seed)  # the new readout's start, as build_pipeline seeds a fresh model's
        pipe.transformer.add_prompt_readout(model_config.transformer.prompt_readout_rank, latent_frames)
    encoder_frames = noise_encoder_frames(model_config, latent_frames)
    if encoder_frames and pipe.transformer.noise_encoder is None:
        torch.manual_seed(config.seed)
        pipe.transformer.add_noise_encoder(encoder_frames)
    if model_config.transformer.noise_code_conditioning and not pipe.transformer.config.noise_code_conditioning:
        pipe.transformer.add_noise_code_conditioning()
    lora = model_config.lora
    if config.stage == "motion":
        add_adapter(pipe.transformer, MOTION, lora.motion_rank, lora.every_n_blocks)
    if config.stage == "content":
        load_adapter(pipe.transformer, config.motion_adapter, MOTION)
        add_adapter(pipe.transformer, CONTENT, lora.content_rank, lora.every_n_blocks)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def select_trainable(transformer, config: StageConfig) -> dict[str, torch.nn.Parameter]:
    """Mark and return the stage's trainable parameters by name; freeze the rest.

    base: everything, or blocks 0, n, 2n, ... plus the weights a stock checkpoint lacks (layer
    embedding, pooled prompts' projection, prompt readout; ``trainable_every_n_blocks``), or the
    prompt readout alone (``trainable`` "prompt_readout"); motion / content: that LoRA's weights only.
    """
    if config.trainable == "prompt_readout":
        wanted = lambda name: name.startswith("prompt_readout.")  # noqa: E731
    elif config.stage == "base":
        n = config.trainable_every_n_blocks
        blocks = tuple(f"transformer_blocks.{i}." for i in range(0, transformer.config.num_layers, n or 1))
        wanted = (lambda name: True) if n is None else (lambda name: name.startswith(blocks + STOCK_LACKS_WEIGHTS))
    else:
        adapter = MOTION if config.stage == "motion" else CONTENT
        wanted = lambda name: "lora_" in name and f".{adapter}." in name  # noqa: E731
    trainable = {}
    for name, param in transformer.named_parameters():
        param.requires_grad_(wanted(name))
        if param.requires_grad:
            trainable[name] = param
    return trainable


def set_batch_motion_scale(transformer, scale: float, trainable: dict[str, torch.nn.Parameter]) -> None:
    """Set the motion LoRA's scale for a batch; keep only ``trainable`` requiring gradients.

    (peft's ``set_adapters`` marks every active adapter trainable again.)
    """
    set_motion_scale(transformer, scale)
    keep = {id(p) for p in trainable.values()}
    for param in transformer.parameters():
        param.requires_grad_(id(param) in keep)


#################################################################################
#                                    Batches                                    #
#################################################################################


@dataclass(frozen=True)
class Batch:
    """One micro-batch: latents (B, 4f, C, h, w), prompt_embeds (B, 3, L, D), given_frames (B, 4f) bool."""

    latents: torch.Tensor
    prompt_embeds: torch.Tensor
    given_frames: torch.Tensor
    task: Task
    static: bool | None  # content stage: a batch of static images (motion LoRA at 1) or moving videos


def sample_pools(cache: LatentCache, config: StageConfig) -> dict[bool | None, np.ndarray]:
    """Indices each batch draws from: all samples, or (content) static and moving ones apart.

    Raises ``ValueError`` naming ``data`` when the stage's data lacks a kind it needs.
    """
    static = cache.static.numpy()
    if config.stage == "motion" and not static.all():
        raise ValueError(f"data: the motion stage trains on frozen clips; {int((~static).sum())} samples move")
    if config.stage != "content":
        return {None: np.arange(len(cache))}
    pools = {True: np.flatnonzero(static), False: np.flatnonzero(~static)}
    for kind, share in ((True, config.static_batch_fraction), (False, 1 - config.static_batch_fraction)):
        if share > 0 and len(pools[kind]) == 0:
            raise ValueError(f"data: the content stage needs {'static images' if kind else 'moving videos'}; none found")
    return pools


def batch_rng(seed: int, *counters: int) -> np.random.Generator:
    """A generator fixed by (seed, counters): a resumed run draws what the killed one would have."""
    return np.random.default_rng(np.random.SeedSequence([seed, *counters]))


def draw_batch(cache: LatentCache, pools: dict, config: StageConfig, text_dropout: float,
               rng: np.random.Generator) -> Batch:
    """Pick a task, a kind (content), samples and text dropout for one micro-batch."""
    tasks, weights = zip(*config.task_mixture.weights().items())
    task = tasks[rng.choice(len(tasks), p=np.array(weights) / sum(weights))]
    static = None if None in pools else bool(rng.random() < config.static_batch_fraction)
    pool = pools[static]
    index = torch.from_numpy(rng.choice(pool, size=config.batch_size, replace=len(pool) < config.batch_size))
    dropped = torch.from_numpy(rng.random(config.batch_size) < text_dropout)  # (B,) True: empty prompts
    prompts = cache.prompt_embeds_at(index)  # (B, 3, L, D)
    embeds = torch.where(dropped[:, None, None, None], cache.empty_embeds, prompts)
    layers = given_mask(TASK_GIVEN_LAYERS[task]).expand(config.batch_size, -1)  # (B, 4)
    return Batch(
        latents=cache.latents_at(index),  # (B, 4f, C, h, w)
        prompt_embeds=embeds,
        given_frames=frame_mask(layers, cache.frames_per_layer),  # (B, 4f)
        task=task,
        static=static,
    )


def batch_loss(transformer, batch: Batch, model_config: ModelConfig, trainable, device,
               rng) -> tuple[torch.Tensor, dict[str, float]]:
    """The objective's loss of one micro-batch (the motion LoRA scaled for its kind), a scalar, and the figures
    logged beside it: under ``objective.loss`` encoded_noise the mean KL of the encoded noise (``noise_kl``, nats)."""
    if batch.static is not None:
        set_batch_motion_scale(transformer, 1.0 if batch.static else 0.0, trainable)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    terms = training_terms(
        transformer,
        batch.latents.to(device),
        batch.prompt_embeds.to(device),
        batch.given_frames.to(device),
        model_config.objective,
        generator=generator,
    )
    extras = {} if terms.noise_kl is None else {"noise_kl": float(terms.noise_kl.detach().mean())}
    return objective_loss(terms._replace(pred=terms.pred.float()), model_config.objective), extras


#################################################################################
#                                 The loop                                      #
#################################################################################


def learning_rate(step: int, config: StageConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to lr / 10 at ``steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / (config.warmup_steps + 1)
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    min_lr = config.lr * MIN_LR_RATIO
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))) * (config.lr - min_lr)


def require_device(device: str) -> None:
    """Raise ``ValueError`` naming the field when ``device`` is a CUDA one ("cuda", "cuda:1") and torch sees no GPU."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: {device} requested but no GPU is available")


def make_accelerator(config: StageConfig) -> Accelerator:
    """An Accelerator on the configured device; ``auto`` mixed precision is bf16 where the GPU has it."""
    require_device(config.device)
    on_gpu = config.device != "cpu" and torch.cuda.is_available()
    precision = config.mixed_precision
    if precision == "auto":
        precision = "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "no"
    if precision == "fp16" and not on_gpu:
        raise ValueError("mixed_precision: fp16 needs a GPU; use no or bf16 on the CPU")
    return Accelerator(cpu=not on_gpu, mixed_precision=precision)


@torch.no_grad()
def eval_loss(transformer, cache, pools, config, model_config, trainable, device) -> float:
    """Mean loss over ``eval_batches`` batches with fixed samples, tasks and noise (comparable across steps)."""
    losses = [
        batch_loss(transformer, draw_batch(cache, pools, config, 0.0, batch_rng(config.seed, EVAL_STREAM, i)),
                   model_config, trainable, device, batch_rng(config.seed, EVAL_STREAM + 1, i))[0].item()
        for i in range(config.eval_batches)
    ]
    return float(np.mean(losses))


def check_resumable(out_dir: Path, config: StageConfig, model_config: ModelConfig) -> None:
    """Refuse to resume checkpoints in ``out_dir`` that a run of another config or model config wrote (where
    things lie aside): ``ValueError`` naming the fields that differ. The saved model config is read back as a
    :class:`ModelConfig`, so a model field added since compares at its default (the behaviour the run had)."""
    config_file, model_config_file = out_dir / CONFIG_FILE, out_dir / MODEL_CONFIG_FILE
    if latest_checkpoint(out_dir) is None or not config_file.is_file():
        return
    earlier, now = json.loads(config_file.read_text()), json.loads(config.model_dump_json())
    changed = sorted(key for key in (earlier.keys() & now.keys()) - STAGE_PATH_FIELDS if earlier[key] != now[key])
    if model_config_file.is_file():
        try:
            earlier = ModelConfig.model_validate_json(model_config_file.read_text()).model_dump(mode="json")
        except ValidationError as error:
            raise ValueError(f"out_dir: {model_config_file} holds a model config this version cannot read, so its "
                             f"checkpoints cannot resume; choose another out_dir. {error}") from error
        now = model_config.model_dump(mode="json")
        changed += sorted(f"model.{key}" for key in earlier.keys() | now.keys() if earlier.get(key) != now.get(key))
    if changed:
        raise ValueError(f"out_dir: {out_dir} holds checkpoints of a run with another {', '.join(changed)}; "
                         "resume it with its config, or choose another out_dir")


def train_stage(config: StageConfig, callbacks: TrainCallbacks | None = None) -> StageArtifacts | None:
    """Train one stage to ``config.steps`` (resuming from its newest checkpoint) and export its artifacts.

    Returns the artifacts (None on processes other than the main one of a multi-process launch).
    """
    callbacks = callbacks or NoCallbacks()
    model_config = load_model_config(config.model)
    accelerator = make_accelerator(config)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_file = out_dir / CONFIG_FILE
    check_resumable(out_dir, config, model_config)
    write_text_atomic(config_file, config.model_dump_json(indent=1))
    write_text_atomic(out_dir / MODEL_CONFIG_FILE, model_config.model_dump_json(indent=1))

    # 1. Model, inputs, optimizer
    pipe = stage_pipeline(config, model_config).to(accelerator.device)
    cache, _ = load_or_build_cache(pipe, config.data, model_config, config.resolved_cache_dir)
    readout = pipe.transformer.prompt_readout
    if config.stage == "base" and readout is not None and readout.untrained:
        # The readout's data-dependent start, from the prompts' mean tokens (N, 3, D); a resume then loads trained ones.
        readout.standardise_with(cache.pooled_prompt_embeds())
    pools = sample_pools(cache, config)
    trainable = select_trainable(pipe.transformer, config)
    if config.gradient_checkpointing:
        pipe.transformer.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(list(trainable.values()), lr=config.lr, betas=(0.9, 0.95),
                                  weight_decay=config.weight_decay)
    transformer, optimizer = accelerator.prepare(pipe.transformer, optimizer)
    keep_trainable_only(accelerator, transformer, trainable)
    ema = TrainableAverage(trainable, config.ema_decay) if config.ema_decay is not None else None
    transformer.train()

    # 2. Resume from the newest complete checkpoint
    remove_partial_checkpoints(out_dir)
    step = start = 0
    if (found := latest_checkpoint(out_dir)) is not None:
        step = start = load_checkpoint(accelerator, found[1], ema)
        log.info("resumed from %s at step %d", found[1].name, step)

    samples_per_step = config.batch_size * config.grad_accum * accelerator.num_processes
    device = accelerator.device
    while True:
        # 3. Learning rate
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # 4. Eval and checkpoint (not at the step just resumed from)
        if step != start and (step % config.checkpoint_every == 0 or step == config.steps):
            if config.eval_batches:
                loss = eval_loss(transformer, cache, pools, config, model_config, trainable, device)
                if accelerator.is_main_process:
                    callbacks.on_step(step, {"eval_loss": loss})
            if accelerator.is_main_process:
                callbacks.on_checkpoint(save_checkpoint(accelerator, out_dir, step, config, ema))
            accelerator.wait_for_everyone()

        # 5. Stop
        if step >= config.steps:
            break

        # 6. Micro-steps with gradient accumulation
        tic = time.perf_counter()
        total, extras = 0.0, {}
        for micro in range(config.grad_accum):
            rng = batch_rng(config.seed, step, micro, accelerator.process_index)
            batch = draw_batch(cache, pools, config, model_config.objective.text_dropout, rng)
            sync = nullcontext() if micro == config.grad_accum - 1 else accelerator.no_sync(transformer)
            with sync:
                loss, micro_extras = batch_loss(transformer, batch, model_config, trainable, device, rng)
                loss = loss / config.grad_accum
                accelerator.backward(loss)
            total += loss.item()
            for name, value in micro_extras.items():
                extras[name] = extras.get(name, 0.0) + value / config.grad_accum

        # 7. Clip, step, average
        grad_norm = accelerator.clip_grad_norm_(trainable.values(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(trainable.values())
        step += 1

        # 8. Log
        seconds = time.perf_counter() - tic
        metrics = {"loss": total, "lr": lr, "grad_norm": float(grad_norm), "samples_per_s": samples_per_step / seconds,
                   **extras}
        if accelerator.is_main_process:
            callbacks.on_step(step, metrics)

    # 9. Final artifacts, written by the main process
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return None
    if ema is not None:
        ema.copy_to(trainable.values())  # the stage exports the averaged weights
    artifacts = finish_stage(config, model_config, accelerator.unwrap_model(transformer), pipe, cache, config_file, step)
    callbacks.on_stage_end(artifacts)
    return artifacts


@torch.no_grad()
def finish_stage(config: StageConfig, model_config: ModelConfig, transformer, pipe, cache: LatentCache,
                 config_file: Path, step: int) -> StageArtifacts:
    """Export the stage's model/adapter, sample preview clips and, for content, run the motion check."""
    transformer.eval()
    out_dir = Path(config.out_dir)
    generating = [()]  # previews and the motion check generate: no layer given
    steps = config.sample_steps or pipe.default_steps(generating)
    guidance = pipe.default_guidance(generating)
    model_dir = adapter_dir = None
    metrics: dict[str, float] = {}
    if config.stage == "base":
        model_dir = export_model(pipe, out_dir / "model")
    elif config.stage == "motion":
        set_motion_scale(transformer, 1.0)
        adapter_dir = export_adapter(transformer, MOTION, out_dir / "adapter")
    else:
        adapter_dir = export_adapter(transformer, CONTENT, out_dir / "adapter")
        if config.motion_check_count:
            embeds, negative = sample_prompts(cache, config.motion_check_count)
            metrics = motion_check(pipe, embeds.to(pipe.device), negative.to(pipe.device), steps, guidance, config.seed)
        model_dir = export_inference_model(pipe, out_dir / "model")
    samples_dir = write_samples(pipe, cache, out_dir / "samples", config.preview_count, steps, guidance,
                                fps=model_config.clip.fps, seed=config.seed)
    return StageArtifacts(stage=config.stage, out_dir=out_dir, final_step=step, model_dir=model_dir,
                          adapter_dir=adapter_dir, samples_dir=samples_dir, config_file=config_file, metrics=metrics)


def main(argv: list[str] | None = None) -> None:
    """``python -m layerflow_model.training STAGE_CONFIG``: train one stage, logging every step."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("config", type=Path, help="a StageConfig as YAML or JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    train_stage(read_stage_config(args.config), LoggingCallbacks(every=1))


if __name__ == "__main__":
    main()
