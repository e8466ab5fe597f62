"""Which stage runs are finished: a key per (config, inputs, upstream stage) and a marker per stage folder.

A stage's key hashes its config (without paths), the content hashes of its shard folders and
the key of the stage it builds on, so a changed base model changes the motion and content
keys too. A flow puts each stage run in a folder named by its key; ``DONE.json`` in it, written
last, records the finished stage's artifacts, so a rerun with the same inputs and config
skips the stage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from .callbacks import StageArtifacts
from .latent_cache import data_content_hash
from .train_config import StageConfig, StageName, TrainConfig
from .video_io import digest_files, write_text_atomic

DONE_FILE = "DONE.json"
_PATH_FIELDS = ("out_dir", "model_dir", "adapter_dir", "samples_dir", "config_file")


def stage_key(config: StageConfig, upstream_key: str = "") -> str:
    """16 hex digits naming a stage run: its config identity, data content hashes and upstream key."""
    parts = {
        "config": config.identity(),
        "data": [data_content_hash(folder) for folder in config.data],
        "upstream": upstream_key,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def stage_cache_dir(out: Path, cache_dir: Path | None) -> Path:
    """Where a run in ``out`` keeps its latent caches: ``cache_dir`` made absolute, or ``out/cache``."""
    return Path(cache_dir).resolve() if cache_dir is not None else out / "cache"


def keyed_stage_config(config: TrainConfig, stage: StageName, out: Path, data: list[Path],
                       earlier: dict[str, tuple[str, StageArtifacts]],
                       cache_dir: Path | None = None) -> tuple[str, StageConfig]:
    """(key, flat config) of one stage of a run in ``out``: its folder ``out/<stage>/<key>/``, its cache
    ``cache_dir`` (default ``out/cache``), built on the ``earlier`` stages' (key, artifacts) (``base`` for
    motion, both for content)."""
    upstream = {"base": None, "motion": "base", "content": "motion"}[stage]
    stage_config = config.stage_config(
        stage, out_dir=out / stage, cache_dir=stage_cache_dir(out, cache_dir), data=data,
        init_from=earlier["base"][1].model_dir if stage != "base" else None,
        motion_adapter=earlier["motion"][1].adapter_dir if stage == "content" else None,
    )
    key = stage_key(stage_config, earlier[upstream][0] if upstream else "")
    return key, stage_config.model_copy(update={"out_dir": out / stage / key})


def starting_point_hash(config: StageConfig) -> str:
    """Hash of the weights a stage starts from (``init_from``'s and ``motion_adapter``'s safetensors files,
    by path within each folder); "" for a base stage from scratch."""
    if config.init_from is None:
        return ""
    digest = hashlib.sha256()
    for folder in (config.init_from, config.motion_adapter):
        if folder is not None:
            digest_files(digest, Path(folder), sorted(Path(folder).rglob("*.safetensors")))
    return digest.hexdigest()[:16]


def keyed_standalone_stage(config: StageConfig, out: Path, cache_dir: Path | None = None) -> tuple[str, StageConfig]:
    """(key, config) of one stage run on its own in ``out``: its folder ``out/<stage>/<key>/``, its cache
    ``cache_dir`` (default ``out/cache``); the key hashes the config, its data and the weights it starts from."""
    key = stage_key(config, starting_point_hash(config))
    return key, config.model_copy(update={"out_dir": out / config.stage / key,
                                          "cache_dir": stage_cache_dir(out, cache_dir)})


def write_done(artifacts: StageArtifacts, key: str) -> Path:
    """Mark the stage in ``artifacts.out_dir`` finished (atomically); return the marker."""
    record = {k: (str(v) if k in _PATH_FIELDS and v is not None else v) for k, v in asdict(artifacts).items()}
    path = Path(artifacts.out_dir) / DONE_FILE
    return write_text_atomic(path, json.dumps({"key": key, "artifacts": record}, indent=1))


def read_done(out_dir: Path, key: str | None = None) -> StageArtifacts | None:
    """The finished stage's artifacts in ``out_dir`` (with this ``key``, when given), else None."""
    path = Path(out_dir) / DONE_FILE
    if not path.is_file():
        return None
    done = json.loads(path.read_text())
    if key is not None and done["key"] != key:
        return None
    record = done["artifacts"]
    return StageArtifacts(**{k: (Path(v) if k in _PATH_FIELDS and v is not None else v) for k, v in record.items()})


def latest_done(stage_root: Path) -> tuple[str, StageArtifacts] | None:
    """(key, artifacts) of the most recently finished run under ``stage_root/<key>/``, else None."""
    markers = sorted(Path(stage_root).glob(f"*/{DONE_FILE}"), key=lambda p: p.stat().st_mtime)
    if not markers:
        return None
    key = json.loads(markers[-1].read_text())["key"]
    return key, read_done(markers[-1].parent)
