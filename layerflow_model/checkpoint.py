"""Training checkpoints: accelerate state written atomically, resumed from the newest complete one.

A checkpoint is a folder ``checkpoints/step-NNNNNNNN/`` holding accelerate's
``save_state(safe_serialization=True)`` output (model weights as safetensors; optimizer and
RNG states as torch files — our own trusted output) and ``trainer_state.json`` (the step and
the resolved stage config). It is written under a hidden temporary name and renamed when
complete, so a run killed mid-write leaves no half checkpoint under a final name; the
temporaries are removed on the next start.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from .train_config import StageConfig

STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^step-(\d{8})$")


def checkpoint_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "checkpoints"


def complete_checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint, oldest first."""
    found = []
    for path in checkpoint_dir(out_dir).glob("step-*"):
        match = _NAME.match(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match[1]), path))
    return sorted(found)


def latest_checkpoint(out_dir: Path) -> tuple[int, Path] | None:
    """The newest complete checkpoint, or None."""
    found = complete_checkpoints(out_dir)
    return found[-1] if found else None


def remove_partial_checkpoints(out_dir: Path) -> None:
    """Delete temporaries left by a run killed while writing a checkpoint."""
    for path in checkpoint_dir(out_dir).glob(".step-*"):
        shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(accelerator, out_dir: Path, step: int, config: StageConfig) -> Path:
    """Write the accelerate state and the trainer state for ``step``; prune old checkpoints; return the folder."""
    final = checkpoint_dir(out_dir) / f"step-{step:08d}"
    tmp = final.with_name("." + final.name)
    shutil.rmtree(tmp, ignore_errors=True)
    accelerator.save_state(str(tmp), safe_serialization=True)
    (tmp / STATE_FILE).write_text(json.dumps({"step": step, "config": config.model_dump(mode="json")}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for _, old in complete_checkpoints(out_dir)[: -config.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(accelerator, folder: Path) -> int:
    """Restore model, optimizer and RNG states from ``folder``; return its step."""
    accelerator.load_state(str(folder))
    return json.loads((Path(folder) / STATE_FILE).read_text())["step"]
