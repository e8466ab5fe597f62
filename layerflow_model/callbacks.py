"""How the training loop reports: a small callback protocol and what a finished stage hands over.

The library never imports a tracker; ``tasks/`` implements :class:`TrainCallbacks` with
MLflow. :class:`LoggingCallbacks` writes to the standard ``logging`` module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger("layerflow_model.training")


@dataclass(frozen=True)
class StageArtifacts:
    """What a finished stage produced.

    ``model_dir``: a ``LayerFlowPipeline.save_pretrained`` folder (base, content) or None;
    ``adapter_dir``: a folder with ``pytorch_lora_weights.safetensors`` (motion, content) or None;
    ``samples_dir``: preview GIFs and RGBA WebMs of sampled clips; ``metrics``: end-of-stage
    figures (e.g. ``motion_check.static_change``); ``config_file``: the resolved stage config.
    """

    stage: str
    out_dir: Path
    final_step: int
    model_dir: Path | None
    adapter_dir: Path | None
    samples_dir: Path
    config_file: Path
    metrics: dict[str, float] = field(default_factory=dict)


class TrainCallbacks(Protocol):
    """Hooks the training loop calls; every method may be a no-op."""

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        """After optimizer step ``step`` (1-based): ``loss``, ``lr``, ``samples_per_s``, ``grad_norm`` (and
        ``noise_kl`` under ``objective.loss`` encoded_noise); at checkpoint steps also once with ``eval_loss`` alone."""

    def on_checkpoint(self, path: Path) -> None:
        """After a complete checkpoint folder is in place."""

    def on_stage_end(self, artifacts: StageArtifacts) -> None:
        """After the stage's final artifacts are written."""


class NoCallbacks:
    """Reports nothing."""

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def on_checkpoint(self, path: Path) -> None:
        pass

    def on_stage_end(self, artifacts: StageArtifacts) -> None:
        pass


class LoggingCallbacks(NoCallbacks):
    """Logs every ``every``-th step, each checkpoint and the stage end to ``logging``."""

    def __init__(self, every: int = 10) -> None:
        self.every = every

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        if step % self.every == 0 or "eval_loss" in metrics:
            log.info("step %d %s", step, " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

    def on_checkpoint(self, path: Path) -> None:
        log.info("checkpoint %s", path)

    def on_stage_end(self, artifacts: StageArtifacts) -> None:
        log.info("stage %s finished at step %d: %s", artifacts.stage, artifacts.final_step, artifacts.metrics)
