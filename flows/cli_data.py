"""``layerflow data``: build layered training shards (a Prefect flow) and export them."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from data_recipes.build import DEFAULT_CHUNK_SIZE
from data_recipes.registry import RECIPES
from flows.cli_help import ReflowedHelpGroup

data_app = typer.Typer(
    cls=ReflowedHelpGroup,
    help=(
        "Layered training data: build webdataset shards (layers.npz + json per clip, manifest.json per folder) "
        "from a recipe, or export shards to the official LayerFlow folder layout."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

RecipeName = Enum("RecipeName", {name: name for name in RECIPES}, type=str)


def _parse_settings(settings: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> options; VALUE is read as JSON when it parses, else as a string."""
    options = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {setting!r}", param_hint="--set")
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    return options


@data_app.command()
def build(
    recipe: Annotated[RecipeName, typer.Argument(help="the recipe to run", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="output folder for the shards and manifest.json")],
    src: Annotated[Optional[Path], typer.Option(
        "--src", help="source folder: foregrounds (copy-paste), images, videos, LayerFlow sequences, or shards "
                      "(frozen); not for synthetic")] = None,
    backgrounds: Annotated[Optional[Path], typer.Option(help="copy-paste: folder of background videos")] = None,
    seed: Annotated[Optional[int], typer.Option(help="synthetic: first seed; copy-paste, frozen: random seed")] = None,
    count: Annotated[Optional[int], typer.Option(help="synthetic: number of clips")] = None,
    split: Annotated[Optional[str], typer.Option(help="synthetic: train (seeds < 1e6) or eval (seeds >= 1e6)")] = None,
    frames: Annotated[Optional[int], typer.Option(help="frames per clip (synthetic 8, others 16)")] = None,
    height: Annotated[Optional[int], typer.Option(help="clip height in pixels (with --width)")] = None,
    width: Annotated[Optional[int], typer.Option(help="clip width in pixels (with --height)")] = None,
    matting_model: Annotated[Optional[str], typer.Option(help="rembg model for matting (default u2netp)")] = None,
    licence: Annotated[Optional[str], typer.Option(help="provenance / licence string stored in every sample")] = None,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", help="any other recipe option as KEY=VALUE (JSON values), e.g. --set per_foreground=3")] = None,
    chunk_size: Annotated[int, typer.Option(help="samples per shard (one Prefect task each)")] = DEFAULT_CHUNK_SIZE,
    workers: Annotated[int, typer.Option(help="shards built in parallel")] = 2,
) -> None:
    """Build a recipe's shards with the Prefect flow build-data; rerun the same command to finish a killed build.

    Example: layerflow data build synthetic --seed 0 --count 1000 --out data/synthetic

    Example: layerflow data build copy-paste --src fg/ --backgrounds bg/ --height 32 --width 32 --out data/cp

    Bad inputs are skipped and listed in manifest.json. Exit status 0 when the folder holds a sample of the recipe.
    """
    from data_recipes.registry import recipe_config
    from flows.build_data import run_build

    given = {"src": src, "backgrounds": backgrounds, "seed": seed, "count": count, "split": split, "frames": frames,
             "height": height, "width": width, "matting_model": matting_model, "licence": licence}
    options = {**{k: v for k, v in given.items() if v is not None}, **_parse_settings(settings or [])}
    try:
        config = recipe_config(recipe.value, **options)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=f"options of recipe {recipe.value}") from None
    manifest = run_build(config, out, chunk_size=chunk_size, workers=workers)
    written = manifest.counts.get(recipe.value, 0)
    typer.echo(f"{written} {recipe.value} samples in {out} ({len(manifest.skipped)} inputs skipped, "
               f"content hash {manifest.content_hash[:12]})")
    raise typer.Exit(0 if written > 0 else 1)


@data_app.command()
def export(
    shards: Annotated[Path, typer.Option("--shards", help="folder of *.tar shards")],
    out: Annotated[Path, typer.Option("--out", help="output folder: one LayerFlow sequence folder per sample")],
) -> None:
    """Write shards back out as OUT/KEY/{fg,bg,bl,mask}/NNNN.png plus OUT/meta_export.json, for inspection."""
    from data_recipes.export import export_shards

    if not shards.is_dir():
        raise typer.BadParameter(f"{shards} is not a folder", param_hint="--shards")
    keys = export_shards(shards, out)
    typer.echo(f"exported {len(keys)} samples to {out}")
