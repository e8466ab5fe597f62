"""An exponential moving average of a stage's trainable weights, checkpointed by name as safetensors.

diffusers' :class:`~diffusers.training_utils.EMAModel` keeps the shadow weights; its decay at
optimizer step ``s`` is ``min(decay, (1 + s) / (10 + s))``, so a short run averages about its
last tenth of steps and a long one settles at ``decay``. The shadow goes into each checkpoint
as ``ema.safetensors`` (name -> tensor), so a resumed run averages what an unbroken one would.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file

EMA_FILE = "ema.safetensors"


class TrainableAverage(EMAModel):
    """The moving average of ``trainable`` (name -> parameter, as ``select_trainable`` returns them)."""

    def __init__(self, trainable: dict[str, torch.nn.Parameter], decay: float) -> None:
        super().__init__(list(trainable.values()), decay=decay, foreach=True)
        self.names = list(trainable)

    def save(self, folder: Path) -> None:
        """Write the averaged weights to ``folder/ema.safetensors``."""
        state = {name: shadow.detach().cpu().contiguous() for name, shadow in zip(self.names, self.shadow_params)}
        save_file(state, str(Path(folder) / EMA_FILE))

    def load(self, folder: Path, step: int) -> None:
        """Read the averaged weights of the checkpoint ``folder`` written at optimizer step ``step``.

        Raises ``ValueError`` naming ``ema_decay`` when the checkpoint holds no average or another one.
        """
        path = Path(folder) / EMA_FILE
        if not path.is_file():
            raise ValueError(f"ema_decay: {folder} holds no averaged weights ({EMA_FILE}); "
                             "was the run started without ema_decay?")
        state = load_file(str(path))
        if sorted(state) != sorted(self.names):
            raise ValueError(f"ema_decay: {path} averages other parameters than this stage trains "
                             f"({len(state)} saved, {len(self.names)} trainable)")
        self.shadow_params = [state[name].to(shadow.device, shadow.dtype)
                              for name, shadow in zip(self.names, self.shadow_params)]
        self.optimization_step = step
