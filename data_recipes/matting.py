"""Foreground mattes with rembg, from local model files only (nothing is downloaded).

The default model is u2netp, placed by the install step (``python -m
data_recipes.fetch_u2netp``) in ``$U2NET_HOME`` (default ``~/.u2net``). Any other rembg
model name works when its ``NAME.onnx`` is already in rembg's model folders.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DEFAULT_MODEL = "u2netp"


def _session_class(model_name: str):
    from rembg.sessions import sessions_class  # imported on first use: rembg loads slowly

    for session_class in sessions_class:
        if session_class.name() == model_name:
            return session_class
    names = sorted(c.name() for c in sessions_class)
    raise ValueError(f"matting model {model_name!r} is not a rembg model; choose one of {names}")


class Matter:
    """A rembg session for one model; :meth:`matte` gives soft alpha for RGB frames.

    Raises ``FileNotFoundError`` (at construction) when the model file is not on
    disk, rather than letting rembg download it.
    """

    def __init__(self, model_name: str = DEFAULT_MODEL) -> None:
        from rembg import new_session

        session_class = _session_class(model_name)
        file_name = f"{model_name}.onnx"
        if session_class.resolve_existing(file_name) is None:
            raise FileNotFoundError(
                f"rembg model file {file_name} not found in {session_class.model_dir()} or "
                f"{session_class.legacy_home()}; run `python -m data_recipes.fetch_u2netp` for u2netp, "
                "or place the file there (models are never downloaded at run time)"
            )
        self.model_name = model_name
        self._session = new_session(model_name)

    def matte(self, rgb: np.ndarray) -> np.ndarray:
        """rgb (H, W, 3) in [0, 1] -> soft alpha (H, W) float32 in [0, 1]."""
        image = Image.fromarray(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8))
        mask = self._session.predict(image)[0]  # PIL "L" at the input size
        return np.asarray(mask, dtype=np.float32) / 255.0

    def matte_frames(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) in [0, 1] -> soft alpha (T, H, W) in [0, 1], frame by frame."""
        return np.stack([self.matte(frame) for frame in frames])


def binarise(alpha: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Soft alpha -> hard {0, 1} float32 mask (the paper's stage-1 coarse, SAM-style alpha)."""
    return (alpha >= threshold).astype(np.float32)
