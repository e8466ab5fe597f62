"""Layered training data: recipes that make layered clips, written as webdataset shards.

Recipes (each usable without Prefect): ``synthetic``, ``copy-paste``, ``layered-images``,
``coarse-video``, ``layerflow-folder``, ``frozen`` — see :data:`registry.RECIPES`.
:func:`build.build` writes a recipe's samples to ``*.tar`` shards plus ``manifest.json``;
:mod:`shards` documents and reads the format; :func:`export.export_shards` writes shards
back out in the official LayerFlow folder layout. Imports neither Prefect nor MLflow.
"""

from .build import build, build_shard, plan_chunks
from .export import export_shards
from .manifest import Manifest, read_manifest
from .registry import RECIPES, make_recipe, recipe_config
from .sample import LayeredSample
from .shards import iter_samples, read_shard

__all__ = [
    "RECIPES",
    "LayeredSample",
    "Manifest",
    "build",
    "build_shard",
    "export_shards",
    "iter_samples",
    "make_recipe",
    "plan_chunks",
    "read_manifest",
    "read_shard",
    "recipe_config",
]
