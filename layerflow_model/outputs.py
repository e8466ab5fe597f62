"""Write one sampled layered clip as files other tools open.

An output folder holds:

- ``fg/``, ``bg/``, ``bl/``, ``mask/`` — the official LayerFlow layout (PNG frames);
- ``foreground.webm`` (VP9 with alpha) and ``foreground.mov`` (ProRes 4444) — the transparent
  foreground for editors and browsers;
- ``background.mp4`` and ``blend.mp4`` (H.264) — the opaque layers;
- ``preview.png`` (checkerboard grid) and ``preview.gif`` (animated panels);
- ``layers.json`` — prompts, task, seed, model and clip shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .clip import LayeredClip, LayerPrompts
from .layerflow_folder import write_layerflow_sequence
from .preview import write_preview_gif, write_preview_grid
from .video_io import write_rgb_mp4, write_rgba_prores, write_rgba_webm, write_text_atomic


def write_layer_outputs(
    out_dir: Path, clip: LayeredClip, prompts: LayerPrompts, fps: float, info: dict[str, Any]
) -> Path:
    """Write every file listed in the module docstring into ``out_dir``; returns ``out_dir``.

    clip: all four layers, float32 in [0, 1]; info: extra ``layers.json`` fields (task, seed, model).
    """
    clip.require("fg", "alpha", "bg", "blend", purpose="writing layer outputs")
    out_dir = Path(out_dir)
    write_layerflow_sequence(out_dir, clip)  # creates out_dir whole, then the rest goes beside
    write_rgba_webm(out_dir / "foreground.webm", clip.fg, clip.alpha, fps)
    write_rgba_prores(out_dir / "foreground.mov", clip.fg, clip.alpha, fps)
    write_rgb_mp4(out_dir / "background.mp4", clip.bg, fps)
    write_rgb_mp4(out_dir / "blend.mp4", clip.blend, fps)
    write_preview_grid(out_dir / "preview.png", clip)
    write_preview_gif(out_dir / "preview.gif", clip, fps)
    height, width = clip.size
    record = {
        "prompts": {"fg": prompts.fg, "bg": prompts.bg, "blend": prompts.blend},
        "fps": fps,
        "frames": clip.num_frames,
        "height": height,
        "width": width,
        **info,
    }
    write_text_atomic(out_dir / "layers.json", json.dumps(record, indent=2) + "\n")
    return out_dir
