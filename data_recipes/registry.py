"""The recipes by name: configs from options, recipes from configs."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .coarse_video import CoarseVideoConfig, CoarseVideoRecipe
from .copy_paste import CopyPasteConfig, CopyPasteRecipe
from .frozen import FrozenConfig, FrozenRecipe
from .layered_images import LayeredImagesConfig, LayeredImagesRecipe
from .layerflow_folder_source import LayerflowFolderConfig, LayerflowFolderRecipe
from .recipe import Recipe
from .synthetic import SyntheticConfig, SyntheticRecipe

RECIPES = {
    recipe.name: (config, recipe)
    for config, recipe in (
        (SyntheticConfig, SyntheticRecipe),
        (CopyPasteConfig, CopyPasteRecipe),
        (LayeredImagesConfig, LayeredImagesRecipe),
        (CoarseVideoConfig, CoarseVideoRecipe),
        (LayerflowFolderConfig, LayerflowFolderRecipe),
        (FrozenConfig, FrozenRecipe),
    )
}

AnyRecipeConfig = Annotated[
    SyntheticConfig | CopyPasteConfig | LayeredImagesConfig | CoarseVideoConfig | LayerflowFolderConfig | FrozenConfig,
    Field(discriminator="recipe"),
]


def recipe_config(name: str, **options: Any) -> AnyRecipeConfig:
    """The validated config of recipe ``name``; options the recipe lacks are rejected.

    Raises ``ValueError`` for an unknown name (listing the valid ones) and pydantic's
    ``ValidationError`` (a ``ValueError``) naming each bad field.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[name][0](**options)


def make_recipe(config: AnyRecipeConfig) -> Recipe:
    """The recipe object for a config."""
    return RECIPES[config.recipe][1](config)
