"""LayerFlow: layer-aware video generation — the model library (no Prefect, no MLflow).

Names are imported lazily, so that ``import layerflow_model.video_io`` (or the clip type)
does not pay for importing torch and diffusers.
"""

import importlib

_EXPORTS = {
    "LayeredClip": "clip",
    "LayerPrompts": "clip",
    "composite": "clip",
    "premultiply": "clip",
    "unpremultiply": "clip",
    "CogVideoXVAECodec": "codec",
    "FrameVAECodec": "codec",
    "PixelUnshuffleCodec": "codec",
    "Task": "conditioning",
    "MODEL_PRESETS": "config",
    "ModelConfig": "config",
    "get_config": "config",
    "build_pipeline": "factory",
    "LayerFlowPipeline": "pipeline",
    "LayerFlowPipelineOutput": "pipeline",
    "LayerFlowTransformer": "transformer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
