"""Training checkpoints: accelerate state written atomically, resumed from the newest complete one.

A checkpoint is a folder ``checkpoints/step-NNNNNNNN/`` holding accelerate's
``save_state(safe_serialization=True)`` output (optimizer and RNG states as torch files, read
back with torch's weights-only unpickler, which refuses to run code), the stage's trainable
parameters as ``trainable.safetensors`` (see :func:`keep_trainable_only`: a LoRA stage's
checkpoint holds its adapter, not the frozen model), the moving average of those parameters
as ``ema.safetensors`` when the stage keeps one (``ema_decay``) and ``trainer_state.json`` (the
step and the resolved stage config). It is written under a hidden temporary name and renamed when
complete, so a run killed mid-write leaves no half checkpoint under a final name; the
temporaries are removed on the next start.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .train_config import StageConfig
from .weight_average import TrainableAverage

STATE_FILE = "trainer_state.json"
TRAINABLE_FILE = "trainable.safetensors"
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


def save_checkpoint(accelerator, out_dir: Path, step: int, config: StageConfig,
                    ema: TrainableAverage | None = None) -> Path:
    """Write the accelerate state, the weight average (if any) and the trainer state for ``step``;
    prune old checkpoints; return the folder."""
    final = checkpoint_dir(out_dir) / f"step-{step:08d}"
    tmp = final.with_name("." + final.name)
    shutil.rmtree(tmp, ignore_errors=True)
    accelerator.save_state(str(tmp), safe_serialization=True)
    if ema is not None:
        ema.save(tmp)
    (tmp / STATE_FILE).write_text(json.dumps({"step": step, "config": config.model_dump(mode="json")}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for _, old in complete_checkpoints(out_dir)[: -config.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(accelerator, folder: Path, ema: TrainableAverage | None = None) -> int:
    """Restore model, optimizer, RNG states and the weight average (if any) from ``folder``; return its step."""
    accelerator.load_state(str(folder))
    step = json.loads((Path(folder) / STATE_FILE).read_text())["step"]
    if ema is not None:
        ema.load(folder, step)
    return step


def keep_trainable_only(accelerator, model: torch.nn.Module, trainable: dict[str, torch.nn.Parameter]) -> None:
    """Make ``accelerator.save_state`` / ``load_state`` write and read only ``trainable`` of ``model``.

    ``model``: the one model ``accelerator.prepare`` returned; ``trainable``: parameters of it by their
    names in the unwrapped model, which they are saved under in ``TRAINABLE_FILE`` (safetensors); the
    frozen rest is not written, since the stage rebuilds it from its starting point on resume. Loading
    a checkpoint without that file (an older run's, holding the whole model) is left to accelerate.
    """
    unwrapped = accelerator.unwrap_model(model)

    def save_hook(models, weights, output_dir: str) -> None:
        weights.pop()
        state = {name: param.detach().cpu().contiguous() for name, param in trainable.items()}
        save_file(state, str(Path(output_dir) / TRAINABLE_FILE))

    def load_hook(models, input_dir: str) -> None:
        path = Path(input_dir) / TRAINABLE_FILE
        if not path.is_file():
            return
        state = load_file(str(path))
        if sorted(state) != sorted(trainable):
            raise ValueError(f"{path} holds other parameters than this stage trains "
                             f"({len(state)} saved, {len(trainable)} trainable); was the stage config changed?")
        unwrapped.load_state_dict(state, strict=False)
        models.pop()

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)
