"""The official LayerFlow folder layout: one folder of PNG frames per layer, prompts in JSON.

    ROOT/
      meta_<anything>.json        {"videos": {SEQ: {"fg_prompt", "bg_prompt", "bl_prompt",
                                                    "objects": {"1": {"frames": [...]}}, "max_id": "1"}}}
      SEQ/fg/0000.png ...         foreground colour, RGB (see below)
      SEQ/mask/0000.png ...       alpha, 8-bit grey (L)
      SEQ/bg/0000.png ...         clean background, RGB
      SEQ/bl/0000.png ...         blend (the scene), RGB

Foreground convention, measured on the official sample data (DAVIS 480p): ``fg``
files are neither straight colour nor premultiplied over black. They hold the
foreground composited over flat grey, ``fg_file = a * fg + (1 - a) * 126/255``:
where the mask is 0, 91% of fg pixels are exactly 126 (the rest 123 or 125), and
``a * bl + (1 - a) * 126/255`` reproduces the fg files within 0.6-1.4/255 mean on
the three sequences with clean masks. This is what the official loader feeds the
model too: ``(rgb + 1) * a - a`` in [-1, 1] is premultiplication over 0, i.e.
over mid-grey in [0, 1]. Reading converts it to the straight colour that
:class:`LayeredClip` holds (0 where alpha is 0); writing converts back. Pass
``fg_matte=None`` for folders whose fg frames hold straight colour, or ``0.0``
for colour premultiplied over black.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from layerflow_model.clip import LAYER_NAMES, LayeredClip, LayerPrompts, premultiply, unpremultiply
from layerflow_model.video_io import (
    PathLike,
    atomic_output,
    frame_paths,
    read_frames_folder,
    write_grey_png_sequence,
    write_png_sequence,
    write_text_atomic,
)

LAYER_FOLDERS = {"fg": "fg", "alpha": "mask", "bg": "bg", "blend": "bl"}  # clip layer -> sub-folder
FG_MATTE_GREY = 126 / 255  # grey under the official fg frames, measured on the sample data
PROMPT_KEYS = {"fg": "fg_prompt", "bg": "bg_prompt", "blend": "bl_prompt"}  # LayerPrompts field -> JSON key
META_GLOB = "meta*.json"


####################################################################################
# Foreground convention
####################################################################################


def fg_from_file(
    fg_file: np.ndarray, alpha: np.ndarray | None, fg_matte: float | None = FG_MATTE_GREY
) -> np.ndarray:
    """Colour as stored in ``fg/`` -> straight colour.

    fg_file: (T, H, W, 3) in [0, 1], the foreground over a flat ``fg_matte`` grey
    (None: already straight); alpha: (T, H, W) in [0, 1] (unused when
    ``fg_matte`` is None). Returns (T, H, W, 3)
    in [0, 1], 0 where alpha is (near) 0.
    """
    if fg_matte is None:
        return fg_file.astype(np.float32)
    return unpremultiply(fg_file - (1.0 - alpha[..., None]) * fg_matte, alpha)


def fg_to_file(
    fg: np.ndarray, alpha: np.ndarray | None, fg_matte: float | None = FG_MATTE_GREY
) -> np.ndarray:
    """Straight colour (T, H, W, 3) and alpha (T, H, W), in [0, 1] -> the colour stored in ``fg/``.

    Inverse of :func:`fg_from_file`; alpha is unused when ``fg_matte`` is None.
    """
    if fg_matte is None:
        return fg.astype(np.float32)
    return premultiply(fg, alpha) + (1.0 - alpha[..., None]) * np.float32(fg_matte)


####################################################################################
# Sequences
####################################################################################


def read_layerflow_sequence(
    seq_dir: PathLike, layers: Sequence[str] = LAYER_NAMES, fg_matte: float | None = FG_MATTE_GREY
) -> LayeredClip:
    """Read ``seq_dir/{fg,mask,bg,bl}/NNNN.png`` as a :class:`LayeredClip`.

    Returns the requested ``layers`` (fg, alpha, bg, blend), each float32 in
    [0, 1]: fg (T, H, W, 3) straight colour, alpha (T, H, W), bg and blend
    (T, H, W, 3). fg needs the mask to undo the ``fg_matte`` grey (module
    docstring). Raises ``ValueError`` naming the sequence when a sub-folder is
    missing, or when the layers differ in frame names or size.
    """
    seq_dir = Path(seq_dir)
    unknown = [name for name in layers if name not in LAYER_FOLDERS]
    if unknown or not layers:
        raise ValueError(f"layers must be a non-empty subset of {list(LAYER_NAMES)}, got {list(layers)}")
    unmatte_fg = "fg" in layers and fg_matte is not None  # needs the mask even when alpha is not asked for
    needed = [n for n in LAYER_NAMES if n in layers or (n == "alpha" and unmatte_fg)]
    folders = {name: seq_dir / LAYER_FOLDERS[name] for name in needed}
    missing = [f"{folders[name].name}/" for name in needed if not folders[name].is_dir()]
    if missing:
        raise ValueError(f"sequence {seq_dir.name!r} ({seq_dir}) lacks sub-folder(s) {missing}")
    _check_same_frame_names(seq_dir, folders)

    arrays = {name: read_frames_folder(folder).rgb for name, folder in folders.items()}  # (T, H, W, 3)
    if "alpha" in arrays:
        arrays["alpha"] = _grey(arrays["alpha"])  # (T, H, W), [0, 1]
    sizes = {LAYER_FOLDERS[name]: a.shape[1:3] for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{sub}/ {h}x{w}" for sub, (h, w) in sizes.items())
        raise ValueError(f"sequence {seq_dir.name!r}: frame sizes (HxW) differ between layers: {shown}")
    if "fg" in arrays:
        arrays["fg"] = fg_from_file(arrays["fg"], arrays.get("alpha"), fg_matte)
    return LayeredClip(**{name: arrays[name] for name in layers})


def _grey(rgb: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) -> (T, H, W) luma (ITU-R 601, as Pillow's "L"); exact for grey frames."""
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).clip(0.0, 1.0)


def _check_same_frame_names(seq_dir: Path, folders: Mapping[str, Path]) -> None:
    names = {folder.name: [p.stem for p in frame_paths(folder)] for folder in folders.values()}
    reference, ref_names = next(iter(names.items()))
    for sub, sub_names in names.items():
        if sub_names != ref_names:
            lacking = sorted(set(ref_names) - set(sub_names))
            extra = sorted(set(sub_names) - set(ref_names))
            raise ValueError(
                f"sequence {seq_dir.name!r}: {reference}/ has {len(ref_names)} frames but {sub}/ has "
                f"{len(sub_names)} (missing in {sub}/: {lacking[:5]}, only in {sub}/: {extra[:5]})"
            )


def write_layerflow_sequence(
    seq_dir: PathLike, clip: LayeredClip, fg_matte: float | None = FG_MATTE_GREY
) -> Path:
    """Write every layer the clip holds as ``seq_dir/{fg,mask,bg,bl}/0000.png, ...``.

    clip layers are float32 in [0, 1] (see :class:`LayeredClip`); fg is written
    over the ``fg_matte`` grey like the official data, so it needs alpha unless
    ``fg_matte`` is None. The sequence folder is built under a temporary name and
    renamed into place (an existing one is replaced whole).
    """
    if clip.fg is not None and fg_matte is not None:
        clip.require("fg", "alpha", purpose=f"writing fg over the {fg_matte:.3f} grey matte")
    with atomic_output(seq_dir) as tmp:
        tmp.mkdir()
        for name in clip.present_layers():
            folder = tmp / LAYER_FOLDERS[name]
            if name == "alpha":
                write_grey_png_sequence(folder, clip.alpha)
            elif name == "fg":
                write_png_sequence(folder, fg_to_file(clip.fg, clip.alpha, fg_matte))
            else:
                write_png_sequence(folder, getattr(clip, name))
    return Path(seq_dir)


####################################################################################
# Folders and prompts
####################################################################################


def read_layerflow_prompts(root: PathLike) -> dict[str, LayerPrompts]:
    """Prompts of every sequence listed in ``root/meta*.json`` (whitespace stripped).

    Raises ``ValueError`` naming the file for unreadable JSON, a missing
    ``videos`` map or prompt key, or a sequence given different prompts in two files.
    """
    prompts: dict[str, LayerPrompts] = {}
    origin: dict[str, Path] = {}
    for meta_path in sorted(Path(root).glob(META_GLOB)):
        for name, entry in _load_meta(meta_path).items():
            missing = [key for key in PROMPT_KEYS.values() if not isinstance(entry.get(key), str)]
            if missing:
                raise ValueError(f"{meta_path}: sequence {name!r} lacks prompt(s) {missing}")
            found = LayerPrompts(**{field: entry[key].strip() for field, key in PROMPT_KEYS.items()})
            if name in prompts and prompts[name] != found:
                raise ValueError(f"sequence {name!r} has different prompts in {origin[name]} and {meta_path}")
            prompts[name], origin[name] = found, meta_path
    return prompts


def _load_meta(meta_path: Path) -> dict[str, dict]:
    """The ``videos`` map of one meta JSON file."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{meta_path} is not readable JSON: {error}") from error
    videos = meta.get("videos") if isinstance(meta, dict) else None
    if not isinstance(videos, dict) or not all(isinstance(v, dict) for v in videos.values()):
        raise ValueError(f'{meta_path} must hold {{"videos": {{SEQ: {{"fg_prompt": ..., ...}}}}}}')
    return videos


def layerflow_sequence_dirs(root: PathLike) -> list[Path]:
    """Sequence folders of ``root``: sub-folders holding any of fg/, mask/, bg/, bl/, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such LayerFlow folder")
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and any((d / s).is_dir() for s in LAYER_FOLDERS.values())
    )


def iter_layerflow_folder(
    root: PathLike, layers: Sequence[str] = LAYER_NAMES, fg_matte: float | None = FG_MATTE_GREY
) -> Iterator[tuple[str, LayeredClip, LayerPrompts | None]]:
    """Yield ``(name, clip, prompts or None)`` per sequence of ``root``, one at a time.

    Clips as :func:`read_layerflow_sequence`; prompts from ``root/meta*.json``.
    Raises ``ValueError`` when ``root`` holds no sequence folders.
    """
    seq_dirs = layerflow_sequence_dirs(root)
    if not seq_dirs:
        raise ValueError(f"{root} holds no LayerFlow sequences (sub-folders with fg/, mask/, bg/ or bl/)")
    prompts = read_layerflow_prompts(root)
    for seq_dir in seq_dirs:
        yield seq_dir.name, read_layerflow_sequence(seq_dir, layers, fg_matte), prompts.get(seq_dir.name)


def read_layerflow_folder(
    root: PathLike, layers: Sequence[str] = LAYER_NAMES, fg_matte: float | None = FG_MATTE_GREY
) -> list[tuple[str, LayeredClip, LayerPrompts | None]]:
    """Every sequence of ``root`` as ``(name, clip, prompts or None)``, sorted by name.

    Holds all clips in memory (about 220 MB per 16-frame 480x720 sequence with
    all four layers); use :func:`iter_layerflow_folder` to stream.
    """
    return list(iter_layerflow_folder(root, layers, fg_matte))


def write_layerflow_meta(
    root: PathLike, prompts: Mapping[str, LayerPrompts], meta_name: str = "meta_layerflow.json"
) -> Path:
    """Write or merge ``root/meta_name`` with the prompts of already written sequences.

    Each entry gets ``fg_prompt``, ``bg_prompt``, ``bl_prompt`` and, as the official
    loader expects, ``objects["1"]["frames"]`` (frame names of ``root/SEQ``) and
    ``max_id``. Entries of other sequences and other keys are kept. Raises
    ``ValueError`` when a sequence folder is missing.
    """
    root = Path(root)
    if not meta_name.startswith("meta") or not meta_name.endswith(".json"):
        raise ValueError(f"meta_name must match {META_GLOB} so readers find it, got {meta_name!r}")
    meta_path = root / meta_name
    videos = _load_meta(meta_path) if meta_path.exists() else {}
    for name, layer_prompts in prompts.items():
        seq_dir = root / name
        subs = [seq_dir / s for s in LAYER_FOLDERS.values() if (seq_dir / s).is_dir()]
        if not subs:
            raise ValueError(
                f"sequence {name!r} has no frames under {seq_dir}; write the sequence before its meta entry"
            )
        entry = dict(videos.get(name, {}))
        entry.update({key: getattr(layer_prompts, field) for field, key in PROMPT_KEYS.items()})
        entry.update({"objects": {"1": {"frames": [p.stem for p in frame_paths(subs[0])]}}, "max_id": "1"})
        videos[name] = entry
    return write_text_atomic(meta_path, json.dumps({"videos": videos}, indent=4, ensure_ascii=False) + "\n")
