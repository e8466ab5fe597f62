"""The model that ships inside the package: ``small``, trained by the ``gpu`` profile (``default`` on a CPU).

``layerflow generate``, ``decompose``, ``fill-background`` and ``fill-foreground`` use it when
no ``--model`` is given. :func:`ship_model` turns a pipeline's exported model folder into the
shipped copy: the same diffusers folder with the transformer's weights stored in float16
(half the bytes in the repository; ``from_pretrained`` loads them back as float32).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from safetensors.torch import load_file, save_file

SHIPPED_MODEL_DIR = Path(__file__).parent / "pretrained" / "small"
TRANSFORMER_WEIGHTS = Path("transformer") / "diffusion_pytorch_model.safetensors"


def shipped_model_dir() -> Path:
    """The shipped model's folder; ``FileNotFoundError`` saying how to make one when it is missing."""
    if not (SHIPPED_MODEL_DIR / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no shipped model at {SHIPPED_MODEL_DIR}; pass --model DIR, or train one with "
            "`layerflow pipeline --profile default --out runs/default` and `layerflow ship-model runs/default/model`"
        )
    return SHIPPED_MODEL_DIR


def ship_model(model_dir: Path, dest: Path = SHIPPED_MODEL_DIR) -> Path:
    """Copy the pipeline folder ``model_dir`` to ``dest`` with float16 transformer weights; return ``dest``.

    The configs lose ``_name_or_path`` (diffusers records the folder a model was loaded from,
    a path on the training machine). Written to a temporary sibling of ``dest`` and renamed
    over it, so a reader never sees a half-written model.
    """
    model_dir, dest = Path(model_dir), Path(dest)
    if not (model_dir / "model_index.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a saved LayerFlowPipeline folder (no model_index.json)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent)) / "model"
    shutil.copytree(model_dir, staging)
    weights = load_file(staging / TRANSFORMER_WEIGHTS)
    save_file({name: tensor.half() for name, tensor in weights.items()}, staging / TRANSFORMER_WEIGHTS,
              metadata={"format": "pt"})
    for config_file in [staging / "model_index.json", *staging.glob("*/config.json")]:
        config = json.loads(config_file.read_text())
        config.pop("_name_or_path", None)
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    previous = dest.with_name(f".{dest.name}-previous")
    shutil.rmtree(previous, ignore_errors=True)  # left by an interrupted earlier call
    if dest.exists():
        dest.rename(previous)
    staging.rename(dest)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(staging.parent, ignore_errors=True)
    return dest
