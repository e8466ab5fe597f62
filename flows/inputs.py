"""Read the CLI's input files into the given layers of a clip at the model's frame size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_recipes.framing import fit_foreground, fit_frames
from layerflow_model import LayeredClip
from layerflow_model.video_io import VideoFrames, read_video


def read_given_clip(inputs: dict[str, Path], shape: tuple[int, int, int],
                    max_frames: int | None = None) -> tuple[LayeredClip, float]:
    """{"fg" | "bg" | "blend": path} -> (a LayeredClip of (T', H, W) holding those layers, the first file's fps).

    ``shape`` is the model's (T, H, W). A foreground file must carry alpha (it gives both
    ``fg`` and ``alpha``). Each frame is resized to cover (H, W) and centre-cropped as it is
    decoded, a foreground with its alpha (premultiplied, as :func:`read_given_at_full_size` and
    the training data shrink it); all frames are kept (the first ``max_frames`` if given; the
    shortest file's count if several), so T' >= T. Raises ``ValueError`` naming the file when it
    is unreadable, lacks alpha, or has fewer than T frames, and when ``max_frames`` < T.
    """
    num_frames, height, width = shape
    _check_max_frames(max_frames, num_frames)

    def fit(frame: np.ndarray) -> np.ndarray:  # (H0, W0, C) -> (H, W, C), while decoding
        return fit_frames(frame[None], (height, width))[0]

    def fit_rgba(frame: np.ndarray) -> np.ndarray:  # (H0, W0, 4) straight -> (H, W, 4) straight
        if frame.shape[-1] != 4:  # no alpha: read_video refuses the file once it is read
            return fit(frame)
        fg, alpha = fit_foreground(frame[None, ..., :3], frame[None, ..., 3], (height, width))
        return np.concatenate([fg[0], alpha[0, ..., None]], axis=-1)

    videos = {name: read_video(path, require_alpha=name == "fg", max_frames=max_frames,
                               each_frame=fit_rgba if name == "fg" else fit)
              for name, path in inputs.items()}
    for name, video in videos.items():
        _check_enough_frames(inputs[name], video.num_frames, num_frames)
    kept = min(video.num_frames for video in videos.values())
    return LayeredClip(**_given_layers(videos, kept)), next(iter(videos.values())).fps


def crop_to_aspect(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H0, W0, C) -> the largest centred (H', W', C) of aspect ``height`` : ``width``, sides even
    (H.264 needs them), not resized: the part of the frame :func:`fit_frames` keeps, at full size."""
    scale = min(frame.shape[0] / height, frame.shape[1] / width)
    crop_h, crop_w = max(2, int(height * scale) // 2 * 2), max(2, int(width * scale) // 2 * 2)
    top, left = (frame.shape[0] - crop_h) // 2, (frame.shape[1] - crop_w) // 2
    return frame[top:top + crop_h, left:left + crop_w]


def read_given_at_full_size(inputs: dict[str, Path], shape: tuple[int, int, int], max_frames: int | None = None
                            ) -> tuple[LayeredClip, LayeredClip, float]:
    """{"fg" | "bg" | "blend": path} -> (those layers at the model's (T', H, W), the same frames at full
    size (T', H', W'): the centred crop of the model's aspect, and the first file's fps).

    The whole video is held at full size (about 40 bytes per pixel and frame with its layers),
    so a long one needs ``max_frames``. A foreground is shrunk with its alpha (premultiplied).
    Raises ``ValueError`` as :func:`read_given_clip` does, and when the files' crops differ in size.
    """
    num_frames, height, width = shape
    _check_max_frames(max_frames, num_frames)
    videos = {name: read_video(path, require_alpha=name == "fg", max_frames=max_frames,
                               each_frame=lambda frame: crop_to_aspect(frame, height, width))
              for name, path in inputs.items()}
    for name, video in videos.items():
        _check_enough_frames(inputs[name], video.num_frames, num_frames)
    sizes = {name: video.rgb.shape[1:3] for name, video in videos.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the given files differ in size once cropped: {sizes}")
    kept = min(video.num_frames for video in videos.values())
    full = LayeredClip(**_given_layers(videos, kept))
    small = {name: fit_frames(getattr(full, name), (height, width)) for name in ("bg", "blend")
             if getattr(full, name) is not None}
    if full.fg is not None:
        small["fg"], small["alpha"] = fit_foreground(full.fg, full.alpha, (height, width))
    return LayeredClip(**small), full, next(iter(videos.values())).fps


def _given_layers(videos: dict[str, VideoFrames], kept: int) -> dict[str, np.ndarray]:
    """Each file's first ``kept`` frames under its layer's name; a foreground's alpha as ``alpha``."""
    layers = {}
    for name, video in videos.items():
        layers[name] = video.rgb[:kept]
        if name == "fg":
            layers["alpha"] = video.alpha[:kept]
    return layers


def _check_max_frames(max_frames: int | None, num_frames: int) -> None:
    if max_frames is not None and max_frames < num_frames:
        raise ValueError(f"asked for the first {max_frames} frames; the model needs at least {num_frames}")


def _check_enough_frames(path: Path, count: int, num_frames: int) -> None:
    if count < num_frames:
        raise ValueError(f"{path} has {count} frames; the model needs at least {num_frames}")
