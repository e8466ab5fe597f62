"""LayerFlow: layer-aware video generation — the model library (no Prefect, no MLflow)."""

from .clip import LayeredClip, LayerPrompts, composite, premultiply, unpremultiply
from .codec import CogVideoXVAECodec, PixelUnshuffleCodec
from .conditioning import Task
from .config import MODEL_PRESETS, ModelConfig, get_config
from .factory import build_pipeline
from .pipeline import LayerFlowPipeline, LayerFlowPipelineOutput
from .transformer import LayerFlowTransformer

__all__ = [
    "CogVideoXVAECodec",
    "LayerFlowPipeline",
    "LayerFlowPipelineOutput",
    "LayerFlowTransformer",
    "LayeredClip",
    "LayerPrompts",
    "MODEL_PRESETS",
    "ModelConfig",
    "PixelUnshuffleCodec",
    "Task",
    "build_pipeline",
    "composite",
    "get_config",
    "premultiply",
    "unpremultiply",
]
