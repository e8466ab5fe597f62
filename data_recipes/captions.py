"""Captions for source files, from sidecar files or metadata.

Looked up in this order for an input ``X`` (a file ``X.ext`` or a folder ``X``):

1. ``X.json`` beside it (or ``X/prompts.json`` for a folder): per-layer prompts under
   ``fg``/``bg``/``blend`` or the official ``fg_prompt``/``bg_prompt``/``bl_prompt``;
   a ``caption`` key is a single caption.
2. ``X.txt`` beside it (or ``X/caption.txt``): a single caption.
3. An official ``meta*.json`` (``{"videos": {X: {"fg_prompt", ...}}}``) in the input's
   folder or the one above it.
4. For images, a PNG/WebP text chunk ``caption`` or ``Description``.

A single caption says nothing about which layer it describes; each recipe decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from layerflow_model.layerflow_folder import PROMPT_KEYS, read_layerflow_prompts

from .inputs import IMAGE_SUFFIXES

_TEXT_CHUNKS = ("caption", "Caption", "Description", "description")


@dataclass(frozen=True)
class Captions:
    """What is known about an input's captions; any field may be None."""

    fg: str | None = None
    bg: str | None = None
    blend: str | None = None
    text: str | None = None  # a single caption of unknown layer

    def describing(self, layer: str) -> str | None:
        """The best caption for ``layer`` (fg, bg or blend): that layer's, else the single caption."""
        return getattr(self, layer) or self.text


def find_captions(path: Path) -> Captions:
    """Captions of a source file or folder (see the module docstring); empty when none are found."""
    path = Path(path)
    stem = path.name if path.is_dir() else path.stem
    json_files = [path.with_name(f"{stem}.json")] + ([path / "prompts.json"] if path.is_dir() else [])
    text_files = [path.with_name(f"{stem}.txt")] + ([path / "caption.txt"] if path.is_dir() else [])
    for json_file in json_files:
        if json_file.is_file() and json_file != path:
            found = _from_json(json_file)
            if found is not None:
                return found
    for text_file in text_files:
        if text_file.is_file() and text_file != path:
            try:
                text = text_file.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:  # an unreadable sidecar means no caption, not a failed build
                continue
            if text:
                return Captions(text=text)
    for folder in (path.parent, path.parent.parent):
        try:
            prompts = read_layerflow_prompts(folder).get(stem)
        except ValueError:
            prompts = None
        if prompts is not None:
            return Captions(fg=prompts.fg, bg=prompts.bg, blend=prompts.blend)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _from_image_text(path)
    return Captions()


def _from_json(json_file: Path) -> Captions | None:
    try:
        data = json.loads(json_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None

    def text(*keys: str) -> str | None:
        values = [data[k].strip() for k in keys if isinstance(data.get(k), str) and data[k].strip()]
        return values[0] if values else None

    found = Captions(
        fg=text("fg", PROMPT_KEYS["fg"]),
        bg=text("bg", PROMPT_KEYS["bg"]),
        blend=text("blend", PROMPT_KEYS["blend"]),
        text=text("caption"),
    )
    return found if found != Captions() else None


def _from_image_text(path: Path) -> Captions:
    try:
        with Image.open(path) as image:
            chunks = dict(image.info)  # text chunks before the image data; nothing is decoded
    except Exception:  # an unreadable image is reported by the reader, not here
        return Captions()
    for key in _TEXT_CHUNKS:
        value = chunks.get(key)
        if isinstance(value, str) and value.strip():
            return Captions(text=value.strip())
    return Captions()


def join_captions(fg: str, bg: str) -> str:
    """A blend caption from a foreground and a background caption."""
    fg, bg = fg.strip().rstrip("."), bg.strip().rstrip(".")
    if not fg or not bg:
        return fg or bg
    return f"{fg}, in front of {bg[0].lower()}{bg[1:]}."
