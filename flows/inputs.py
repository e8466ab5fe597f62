"""Read the CLI's input files into the given layers of a clip of the model's shape."""

from __future__ import annotations

from pathlib import Path

from data_recipes.framing import fit_frames
from layerflow_model import LayeredClip
from layerflow_model.video_io import read_video


def read_given_clip(inputs: dict[str, Path], shape: tuple[int, int, int]) -> LayeredClip:
    """{"fg" | "bg" | "blend": path} -> a LayeredClip of shape (T, H, W) holding those layers.

    A foreground file must carry alpha (it gives both ``fg`` and ``alpha``). Frames are resized
    to cover (H, W) and centre-cropped; the first T frames are used. Raises ``ValueError``
    naming the file when it is unreadable, lacks alpha, or has fewer than T frames.
    """
    num_frames, height, width = shape
    layers = {}
    for name, path in inputs.items():
        frames = read_video(path, require_alpha=name == "fg")
        if frames.num_frames < num_frames:
            raise ValueError(f"{path} has {frames.num_frames} frames; the model needs at least {num_frames}")
        layers[name] = fit_frames(frames.rgb[:num_frames], (height, width))
        if name == "fg":
            layers["alpha"] = fit_frames(frames.alpha[:num_frames], (height, width))
    return LayeredClip(**layers)
