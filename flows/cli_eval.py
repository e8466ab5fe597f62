"""``layerflow score``, ``decompose`` (model or a baseline) and ``evaluate``.

Plain functions with typer annotations; ``flows/cli.py`` registers them on its app::

    app.command("score")(score)
    app.command("decompose")(decompose)
    app.command("evaluate")(evaluate)
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


class Method(str, Enum):
    median = "median"
    classical = "classical"
    model = "model"


class FgConvention(str, Enum):
    grey = "grey"
    straight = "straight"
    black = "black"


FgOption = "how fg/ frames store colour: grey (official: over 126/255 grey, what layerflow writes), straight, black (premultiplied)"


def score(
    pred: Annotated[Path, typer.Option("--pred", help="predicted sequences: SEQ/{fg,bg,bl,mask}/NNNN.png")],
    gt: Annotated[Path, typer.Option("--gt", help="ground-truth sequences, same layout and names")],
    out: Annotated[Path, typer.Option("--out", help="JSON file to write: mean and per_sequence scores")],
    pred_fg: Annotated[FgConvention, typer.Option("--pred-fg", help=FgOption)] = FgConvention.grey,
    gt_fg: Annotated[FgConvention, typer.Option("--gt-fg", help=FgOption)] = FgConvention.grey,
) -> None:
    """Score every predicted sequence against its ground truth (alpha, fg, bg, blend, temporal metrics)."""
    from layerflow_model.scoring import fg_matte_for, score_folders, write_scores

    try:
        scores = score_folders(pred, gt, fg_matte_for(pred_fg.value), fg_matte_for(gt_fg.value))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    write_scores(out, scores)
    typer.echo("  ".join(f"{name}={value:.4g}" for name, value in scores["mean"].items()))
    typer.echo(f"wrote scores of {len(scores['per_sequence'])} sequences to {out}")


def decompose(
    input: Annotated[Path, typer.Argument(help="a video file or a folder of frames (the blended scene)")],
    out: Annotated[Path, typer.Option("--out", help="output folder: fg/ bg/ bl/ mask/, WebM, ProRes, MP4, previews")],
    method: Annotated[Method, typer.Option("--method", help="model: the LayerFlow model; median, classical: baselines")] = Method.model,
    model: Annotated[Optional[Path], typer.Option("--model", help="a saved LayerFlowPipeline folder (method model; default: the shipped small model)")] = None,
    frames: Annotated[Optional[int], typer.Option("--frames", min=1, help="use the first N frames (default all; the model needs at least its clip length)")] = None,
    overlap: Annotated[Optional[int], typer.Option("--overlap", min=0, help="model: an input longer than its clip is decomposed in windows of the clip's length; frames two windows share, cross-faded (default: half the clip)")] = None,
    fg_prompt: Annotated[str, typer.Option("--fg-prompt", help="foreground prompt (model)")] = "",
    bg_prompt: Annotated[str, typer.Option("--bg-prompt", help="background prompt (model)")] = "",
    blend_prompt: Annotated[str, typer.Option("--blend-prompt", help="blend prompt (model)")] = "",
    steps: Annotated[Optional[int], typer.Option(help="sampling steps (model; default: the model's decompose steps)")] = None,
    guidance: Annotated[Optional[float], typer.Option(help="classifier-free guidance scale, 1 = off (model; default: the model's decompose guidance)")] = None,
    seed: Annotated[int, typer.Option(help="random seed (model)")] = 0,
    device: Annotated[str, typer.Option(help="torch device (model)")] = "cpu",
    flip_average: Annotated[Optional[bool], typer.Option("--flip-average/--no-flip-average", help="model: also decompose the input mirrored left-right, upside down and both, and average the layers (4 passes; default: the model's setting, on for the shipped one)")] = None,
    refine_alpha: Annotated[Optional[bool], typer.Option("--refine-alpha/--no-refine-alpha", help="model: where its alpha is unsure (edges, translucent parts), solve alpha and foreground colour from the input, blend = alpha x fg + (1 - alpha) x bg (default: the model's setting, on for the shipped one)")] = None,
    full_size: Annotated[bool, typer.Option("--full-size", help="model: write the layers at the input's size (its centred crop of the model's aspect), not the model's: each layer resized, then alpha and foreground re-solved against the input where the resize left them unsure (with --refine-alpha, the default). Holds the video at that size in memory (about 40 bytes a pixel a frame): pair a long one with --frames")] = False,
) -> None:
    """Blended video -> foreground, alpha and clean background, by the model or a baseline.

    The model works at its own frame size, on every frame: a video longer than its clip goes
    through it in overlapping windows. The baselines keep the input's size and frames.
    """
    if method is Method.model:
        from .cli import run_task

        run_task(model, out, "decompose", {"blend": input}, (fg_prompt, bg_prompt, blend_prompt), steps, guidance,
                 seed, device, frames, overlap, flip_average, refine_alpha, full_size)
        return
    from data_recipes.baselines import make_baseline
    from layerflow_model import LayerPrompts
    from layerflow_model.outputs import write_layer_outputs
    from layerflow_model.video_io import read_video

    try:
        video = read_video(input, max_frames=frames)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    clip = make_baseline(method.value).decompose(video.rgb)
    info = {"task": "decompose", "method": method.value, "input": str(input)}
    write_layer_outputs(out, clip, LayerPrompts(fg_prompt, bg_prompt, blend_prompt), fps=video.fps, info=info)
    typer.echo(f"wrote {method.value} decomposition of {clip.num_frames} frames to {out}")


def evaluate(
    model: Annotated[Path, typer.Option("--model", help="a saved LayerFlowPipeline folder")],
    out: Annotated[Path, typer.Option("--out", help="output folder: ground_truth/, predictions/, report/, mlflow.db")],
    data: Annotated[Optional[Path], typer.Option("--data", help="sequences in the official layout (default: held-out synthetic seeds)")] = None,
    count: Annotated[int, typer.Option(help="held-out synthetic clips (without --data)")] = 8,
    steps: Annotated[Optional[int], typer.Option(help="sampling steps (default: the model's steps per task)")] = None,
    guidance: Annotated[Optional[float], typer.Option(help="guidance of every task (default: the model's guidance per task)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help="torch device")] = "cpu",
    hardest: Annotated[int, typer.Option(help="clips per task and headline metric in the report's hardest-clips table")] = 3,
    parent_run_id: Annotated[Optional[str], typer.Option(help="MLflow run to nest the eval run under")] = None,
) -> None:
    """Score the model's four tasks and the median and classical baselines; report to MLflow and Prefect.

    Runs are logged to MLFLOW_TRACKING_URI, else to sqlite:///OUT/mlflow.db.
    """
    from pydantic import ValidationError

    from flows.evaluate import EvalConfig, evaluate_flow

    try:
        config = EvalConfig(model=model, out=out, data=data, count=count, steps=steps, guidance=guidance, seed=seed,
                            device=device, hardest=hardest)
    except ValidationError as error:
        raise typer.BadParameter(str(error)) from None
    rows = evaluate_flow(config, parent_run_id=parent_run_id)
    for row in rows:
        typer.echo(f"{row['method']:16s} alpha_iou={row['alpha_iou']:.3f} bg_psnr={row['bg_psnr']:.2f} "
                   f"fg_psnr={row['fg_psnr']:.2f} blend_psnr={row['blend_psnr']:.2f}")
    typer.echo(f"report in {Path(out) / 'report' / 'report.md'} (hardest clips beside their truth in "
               f"{Path(out) / 'report' / 'previews' / 'hardest'})")
