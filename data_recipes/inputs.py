"""Reading source files defensively: every failure becomes :class:`SkipInput` with a reason.

Bad input never stops a build. The readers here are the only place recipes touch
source files, so corrupt or truncated files, zero-byte files, images without alpha
where alpha is required, decompression bombs and clips that are too short all
surface as one exception type that the build records in ``manifest.json``.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from layerflow_model.video_io import FRAME_SUFFIXES, VideoFrames, frame_paths, read_video

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
DEFAULT_MAX_PIXELS = 40_000_000  # per image or frame; more is treated as a decompression bomb


class SkipInput(Exception):
    """An input that cannot make a sample; ``input`` names the file, ``reason`` says why."""

    def __init__(self, input: str | Path, reason: str) -> None:
        super().__init__(f"{input}: {reason}")
        self.input = str(input)
        self.reason = reason


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def is_frame_folder(path: Path) -> bool:
    """A folder holding at least one PNG/JPG frame (hidden files ignored)."""
    return path.is_dir() and any(
        p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".") for p in path.iterdir()
    )


def find_inputs(folder: Path, images: bool, videos: bool) -> list[Path]:
    """Images, video files and frame folders directly under ``folder``, sorted by name.

    ``videos`` covers both video files and frame folders. Hidden entries are skipped.
    Raises ``ValueError`` when ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"input folder {folder} does not exist or is not a directory")
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if (images and is_image(path)) or (videos and (is_video(path) or is_frame_folder(path))):
            found.append(path)
    return found


####################################################################################
# Images
####################################################################################


def _check_nonempty(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise SkipInput(path, f"cannot read file: {error}") from error
    if size == 0:
        raise SkipInput(path, "empty file (0 bytes)")


def _check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise SkipInput(
            path, f"{width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels} (decompression bomb?)"
        )


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, require_alpha: bool = False
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """One image -> rgb (H, W, 3) and alpha (H, W) or None, float32 in [0, 1].

    The pixel count is checked from the header before anything is decoded.
    Raises :class:`SkipInput` for empty, unreadable, truncated, oversized images, and
    for images without alpha when ``require_alpha`` is set.
    """
    path = Path(path)
    _check_nonempty(path)
    try:
        with Image.open(path) as image:
            _check_pixels(path, *image.size, max_pixels)
            has_alpha = "A" in image.getbands() or "transparency" in image.info
            if require_alpha and not has_alpha:
                raise SkipInput(path, f"image has no alpha channel (mode {image.mode}); an RGBA image is required")
            pixels = np.asarray(image.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    except SkipInput:
        raise
    except Exception as error:  # PIL raises many types for corrupt, truncated or bomb files
        raise SkipInput(path, f"not a readable image: {type(error).__name__}: {error}") from error
    return pixels[..., :3], (pixels[..., 3] if has_alpha else None)


####################################################################################
# Videos and frame folders
####################################################################################


def _probe_video_size(path: Path) -> tuple[int, int]:
    """(width, height) of a video file's first stream, from the container header."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise SkipInput(path, "holds no video stream")
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def read_clip(path: Path, min_frames: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS,
              require_alpha: bool = False) -> VideoFrames:
    """A video file or frame folder -> :class:`VideoFrames` (rgb (T, H, W, 3), alpha or None).

    Frame sizes are checked against ``max_pixels`` from headers before decoding.
    Raises :class:`SkipInput` for empty, unreadable, oversized inputs, inputs without
    alpha when ``require_alpha`` is set, and clips with fewer than ``min_frames`` frames.
    """
    path = Path(path)
    try:
        if path.is_dir():
            for frame in frame_paths(path):
                _check_nonempty(frame)
                with Image.open(frame) as image:
                    _check_pixels(frame, *image.size, max_pixels)
        else:
            _check_nonempty(path)
            _check_pixels(path, *_probe_video_size(path), max_pixels)
        frames = read_video(path, require_alpha=require_alpha)
    except SkipInput:
        raise
    except Exception as error:  # PyAV, PIL and read_video raise many types for bad files
        raise SkipInput(path, f"not a readable clip: {type(error).__name__}: {error}") from error
    if frames.num_frames < min_frames:
        raise SkipInput(path, f"clip has {frames.num_frames} frames, fewer than the {min_frames} requested")
    return frames
