"""The ``layerflow`` command line: models, the four tasks, data building and training."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli_help import ReflowedHelpGroup
from flows.cli_train import CacheFolder

app = typer.Typer(
    cls=ReflowedHelpGroup,
    help="LayerFlow: layer-aware video generation — transparent foreground, clean background and blend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


# A temporary Prefect server's first start on a fresh machine (database migrations) took over
# Prefect's default 20 s on a slow 2-core machine; the CLI allows this much unless told otherwise.
EPHEMERAL_SERVER_STARTUP_SECONDS = "120"


@app.callback()
def prepare_process() -> None:
    """Before any command: give a temporary Prefect server time to start, and make SIGTERM (``kill``,
    a scheduler's cancel) exit like Ctrl-C, through the exit handlers: Prefect then stops the
    temporary server it started, and a pipeline's MLflow run is marked FAILED."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_SERVER_STARTUP_SECONDS)
    signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


ModelDir = Annotated[Optional[Path], typer.Option(
    "--model", help="a saved LayerFlowPipeline folder (save_pretrained layout); default: the shipped small model")]
OutDir = Annotated[Path, typer.Option("--out", help="output folder: fg/ bg/ bl/ mask/, WebM, ProRes, MP4, previews")]
Steps = Annotated[Optional[int], typer.Option(help="sampling steps (default: the model's steps for this task)")]
Guidance = Annotated[Optional[float], typer.Option(help="classifier-free guidance scale, 1 = off (default: the model's for this task)")]
Seed = Annotated[int, typer.Option(help="random seed")]
Device = Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda")]
Frames = Annotated[Optional[int], typer.Option(
    "--frames", min=1, help="use the first N frames of the input (default: all; at least the model's clip length)")]
Overlap = Annotated[Optional[int], typer.Option(
    "--overlap", min=0, help="an input longer than the model's clip is processed in windows of the clip's length; "
                             "frames two windows share, cross-faded (default: half the clip)")]
FgPrompt = Annotated[str, typer.Option("--fg-prompt", help="foreground prompt")]
BgPrompt = Annotated[str, typer.Option("--bg-prompt", help="background prompt")]
BlendPrompt = Annotated[str, typer.Option("--blend-prompt", help="prompt for the blended scene")]
FillFullSize = Annotated[bool, typer.Option(
    "--full-size", help="write the layers at the given file's size (its centred crop of the model's aspect), not "
                        "the model's: the given layer as given, the made ones resized, the blend their composite. "
                        "Holds the video at that size in memory (about 40 bytes a pixel a frame): pair a long one "
                        "with --frames")]


@app.command()
def pipeline(
    profile: Annotated[str, typer.Option(help="quick (minutes, a smoke run), default (30-odd minutes on 2 fast CPU cores, about 70 on slow ones) or gpu (one CUDA GPU; add --device cuda)")] = "quick",
    out: Annotated[Path, typer.Option(help="run folder: data, stages, model/, eval/, mlflow.db")] = Path("runs/quick"),
    device: Device = "cpu",
    seed: Annotated[Optional[int], typer.Option(
        min=0, help="training seed (default: the profile's); data and evaluation clips stay the same")] = None,
    cache: CacheFolder = None,
) -> None:
    """The whole pipeline: layered shards -> base -> motion -> content -> evaluation (Prefect + MLflow)."""
    from .pipeline import PIPELINE_EVAL, pipeline_flow

    if profile not in PIPELINE_EVAL:
        raise typer.BadParameter(f"unknown profile {profile!r}; choose one of {sorted(PIPELINE_EVAL)}", param_hint="--profile")
    model = pipeline_flow(profile=profile, out=out, device=device, seed=seed, cache_dir=cache)
    typer.echo(f"model: {model}\nreport: {Path(out) / 'eval' / 'report' / 'report.md'}\nMLflow store: {Path(out) / 'mlflow.db'}")


@app.command("models")
def list_models() -> None:
    """List the named model configs (tiny, small, cogvideox-2b) with their shapes."""
    from layerflow_model.config import MODEL_PRESETS

    for name, config in MODEL_PRESETS.items():
        t, c = config.transformer, config.clip
        typer.echo(
            f"{name:14s} {t.num_layers} blocks x {t.inner_dim} wide, layers of {c.num_frames} frames at "
            f"{c.height}x{c.width}, codec {config.codec.kind}, text {config.text_encoder.kind}"
        )


@app.command("ship-model")
def ship(
    model: Annotated[Path, typer.Argument(help="a pipeline's exported model folder, e.g. runs/default/model")],
) -> None:
    """Make MODEL the shipped default (layerflow_model/pretrained/small, float16 weights)."""
    from layerflow_model.shipped import ship_model

    typer.echo(f"shipped {model} as {ship_model(model)}")


@app.command("new-model")
def new_model(
    config: Annotated[str, typer.Option(help="named config: tiny, small, or cogvideox-2b")],
    out: Annotated[Path, typer.Option(help="folder to save the pipeline in")],
    pretrained_path: Annotated[Optional[Path], typer.Option(help="local diffusers CogVideoX folder (cogvideox-2b)")] = None,
    seed: Seed = 0,
) -> None:
    """Save a freshly initialised (untrained) model, or a local CogVideoX folder converted to LayerFlow."""
    from layerflow_model import build_pipeline, get_config

    overrides = {"pretrained_path": pretrained_path} if pretrained_path else {}
    build_pipeline(get_config(config, **overrides), seed=seed).save_pretrained(out)
    typer.echo(f"saved {config} model to {out}")


@app.command()
def generate(
    out: OutDir,
    fg_prompt: FgPrompt,
    bg_prompt: BgPrompt,
    blend_prompt: BlendPrompt,
    model: ModelDir = None,
    steps: Steps = None,
    guidance: Guidance = None,
    seed: Seed = 0,
    device: Device = "cpu",
) -> None:
    """Text -> transparent foreground, clean background and blended scene."""
    run_task(model, out, "generate", None, (fg_prompt, bg_prompt, blend_prompt), steps, guidance, seed, device)


@app.command("fill-background")
def fill_background(
    foreground: Annotated[Path, typer.Option(help="RGBA video (WebM VP9 alpha, ProRes 4444) or RGBA PNG folder")],
    out: OutDir,
    model: ModelDir = None,
    fg_prompt: FgPrompt = "",
    bg_prompt: BgPrompt = "",
    blend_prompt: BlendPrompt = "",
    steps: Steps = None,
    guidance: Guidance = None,
    seed: Seed = 0,
    device: Device = "cpu",
    frames: Frames = None,
    overlap: Overlap = None,
    full_size: FillFullSize = False,
) -> None:
    """Transparent foreground -> a background for it and the blended scene."""
    run_task(model, out, "fill_background", {"fg": foreground}, (fg_prompt, bg_prompt, blend_prompt), steps, guidance, seed, device,
             frames, overlap, full_size=full_size)


@app.command("fill-foreground")
def fill_foreground(
    background: Annotated[Path, typer.Option(help="background video file or folder of frames")],
    out: OutDir,
    model: ModelDir = None,
    fg_prompt: FgPrompt = "",
    bg_prompt: BgPrompt = "",
    blend_prompt: BlendPrompt = "",
    steps: Steps = None,
    guidance: Guidance = None,
    seed: Seed = 0,
    device: Device = "cpu",
    frames: Frames = None,
    overlap: Overlap = None,
    full_size: FillFullSize = False,
) -> None:
    """Background video -> a transparent foreground for it and the blended scene."""
    run_task(model, out, "fill_foreground", {"bg": background}, (fg_prompt, bg_prompt, blend_prompt), steps, guidance, seed, device,
             frames, overlap, full_size=full_size)


def run_task(model_dir, out, task, inputs, prompts, steps, guidance, seed, device, frames=None, overlap=None,
             flip_average=None, refine_alpha=None, full_size=False) -> None:
    """Load a saved model (None: the shipped one), run ``task`` on the given layer files and write the outputs to ``out``.

    Given files longer than the model's clip are processed in windows of its length
    (``layerflow_model.windows``), ``overlap`` frames shared (None: half the clip);
    ``flip_average`` and ``refine_alpha`` None take the model's default for the task. ``full_size``:
    the outputs at the input's size, its centred crop of the model's aspect
    (:func:`~layerflow_model.compositing.upsample_by_compositing` for a decomposition,
    :func:`~layerflow_model.compositing.upsample_fill` for a fill).
    """
    import torch

    from layerflow_model import LayerFlowPipeline, LayerPrompts
    from layerflow_model.compositing import upsample_by_compositing, upsample_fill
    from layerflow_model.outputs import write_layer_outputs
    from layerflow_model.shipped import shipped_model_dir
    from layerflow_model.windows import sample_in_windows

    from .inputs import read_given_at_full_size, read_given_clip

    if model_dir is None:
        try:
            model_dir = shipped_model_dir()
        except FileNotFoundError as error:
            raise typer.BadParameter(str(error), param_hint="--model") from None
    pipe = LayerFlowPipeline.from_pretrained(model_dir).to(device)
    window = pipe.config.num_frames
    overlap = window // 2 if overlap is None else overlap
    if overlap >= window:
        raise typer.BadParameter(f"{overlap} frames; windows are the model's {window} frames, so at most {window - 1}",
                                 param_hint="--overlap")
    layer_prompts = LayerPrompts(*prompts)
    info = {"task": task, "seed": seed, "model": str(model_dir)}
    if inputs:
        shape = (window, pipe.config.height, pipe.config.width)
        try:
            if full_size:
                given, full_given, fps = read_given_at_full_size(inputs, shape, frames)
            else:
                given, fps = read_given_clip(inputs, shape, frames)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        result = sample_in_windows(pipe, layer_prompts, given, task, overlap, steps, guidance, seed, flip_average,
                                   refine_alpha)
        clip, input_info = result.clip, {"windows": [[s, s + window] for s in result.starts], "overlap": overlap}
        if full_size:
            clip = (upsample_by_compositing(clip, full_given.blend, refine=result.refine_alpha) if task == "decompose"
                    else upsample_fill(clip, full_given))
            input_info["model_size"] = [pipe.config.height, pipe.config.width]
    else:
        fps, input_info = pipe.config.fps, {}
        result = pipe(layer_prompts, task=task, num_inference_steps=steps, guidance_scale=guidance,
                      generator=torch.Generator().manual_seed(seed))
        clip = result.clips[0]
    info |= {"steps": result.num_inference_steps, "guidance": result.guidance_scale,
             "flip_average": result.flip_average, "refine_alpha": result.refine_alpha, **input_info}
    write_layer_outputs(out, clip, layer_prompts, fps=fps, info=info)
    typer.echo(f"wrote {task} outputs ({clip.num_frames} frames) to {out}")


def _mount_subcommands() -> None:
    from .cli_data import data_app
    from .cli_eval import decompose, evaluate, score
    from .cli_train import train, train_stage

    app.add_typer(data_app, name="data")
    app.command("score")(score)
    app.command("decompose")(decompose)
    app.command("train")(train)
    app.command("train-stage")(train_stage)
    app.command("evaluate")(evaluate)


_mount_subcommands()
