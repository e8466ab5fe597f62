"""Per-shard build reports and the output folder's ``manifest.json``.

Each shard ``NAME.tar`` gets a report ``NAME.report.json`` written after the shard is
in place: the report marks the shard complete and lists the inputs skipped while
building it. ``manifest.json`` aggregates every complete report of the folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from layerflow_model.video_io import write_text_atomic

MANIFEST_NAME = "manifest.json"
REPORT_SUFFIX = ".report.json"
MANIFEST_FORMAT = "layerflow-shards/1"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Skipped(_Record):
    """An input left out of the build, and why."""

    input: str
    reason: str


class ShardReport(_Record):
    """What building one shard produced; ``sha256`` is None when no sample was written (no tar)."""

    shard: str
    recipe: str
    plan_hash: str
    written: int
    bytes: int
    sha256: str | None
    skipped: list[Skipped]


class ShardEntry(_Record):
    name: str
    recipe: str
    samples: int
    bytes: int
    sha256: str


class Manifest(_Record):
    """Summary of an output folder: samples per recipe, shards, content hash, skipped inputs."""

    format: str = MANIFEST_FORMAT
    counts: dict[str, int]
    total: int
    shards: list[ShardEntry]
    content_hash: str
    skipped: list[Skipped]


def report_path(shard: Path) -> Path:
    """``NAME.tar`` -> ``NAME.report.json`` beside it."""
    return shard.with_name(shard.stem + REPORT_SUFFIX)


def write_report(shard: Path, report: ShardReport) -> Path:
    """Write a shard's report atomically (call after the shard itself is in place)."""
    path = report_path(shard)
    return write_text_atomic(path, report.model_dump_json(indent=1))


def read_complete_report(shard: Path) -> ShardReport | None:
    """The shard's report when the shard is complete on disk, else None.

    Complete: the report exists and parses, and the shard exists with the recorded
    size (or the report says no sample was written).
    """
    path = report_path(shard)
    try:
        report = ShardReport.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None
    if report.written == 0:
        return report
    return report if shard.is_file() and shard.stat().st_size == report.bytes else None


def collect_manifest(folder: Path) -> Manifest:
    """Aggregate the complete shard reports of ``folder`` (skipped entries de-duplicated)."""
    counts: dict[str, int] = {}
    shards: list[ShardEntry] = []
    skipped: dict[tuple[str, str], Skipped] = {}
    for path in sorted(Path(folder).glob(f"*{REPORT_SUFFIX}")):
        shard = path.with_name(path.name.removesuffix(REPORT_SUFFIX) + ".tar")
        report = read_complete_report(shard)
        if report is None:
            continue
        counts[report.recipe] = counts.get(report.recipe, 0) + report.written
        if report.sha256 is not None:
            shards.append(ShardEntry(name=shard.name, recipe=report.recipe, samples=report.written,
                                     bytes=report.bytes, sha256=report.sha256))
        for entry in report.skipped:
            skipped.setdefault((entry.input, entry.reason), entry)
    content = "\n".join(f"{s.name} {s.sha256}" for s in shards)
    return Manifest(
        counts=counts,
        total=sum(counts.values()),
        shards=shards,
        content_hash=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        skipped=list(skipped.values()),
    )


def write_manifest(folder: Path) -> Manifest:
    """Collect and write ``folder/manifest.json`` atomically; return it."""
    manifest = collect_manifest(folder)
    write_text_atomic(Path(folder) / MANIFEST_NAME, manifest.model_dump_json(indent=1))
    return manifest


def read_manifest(folder: Path) -> Manifest:
    """Read ``folder/manifest.json``."""
    return Manifest.model_validate_json((Path(folder) / MANIFEST_NAME).read_text())
