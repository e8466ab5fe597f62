"""Building an output folder of shards from a recipe, chunk by chunk, resumably.

A build plans the recipe's items, splits them into chunks (one shard each, named
``RECIPE-NNNNNN.tar``) and builds every chunk whose shard is not already complete.
A shard is written under a temporary name and renamed when complete; its report
(``.report.json``) is written after it and marks it done. So a rerun after a kill
rebuilds only missing shards, and no partial shard or duplicate sample is left. A shard
is kept only for the same plan: the recipe's config, the chunk's items and the bytes of
the source files its config names, so a source edited in place is built again.
Prefect (``flows/build_data.py``) maps :func:`build_shard` over chunks; :func:`build`
runs the same steps in-process without Prefect.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from layerflow_model.video_io import digest_files

from .inputs import SkipInput
from .manifest import (
    Manifest,
    ShardReport,
    Skipped,
    read_complete_report,
    report_path,
    write_manifest,
    write_report,
)
from .recipe import Recipe, RecipeConfig
from .sample import LayeredSample
from .shards import SHARD_SUFFIX, write_shard

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 64
_SHARD_FILE = re.compile(r"^(?P<recipe>.+)-(?P<index>\d{6})\.(tar|report\.json)$")  # a shard or its report


@dataclass(frozen=True)
class Chunk:
    """Items built into one shard; ``index`` numbers the shard; ``sources``: :func:`sources_digest` when planned."""

    index: int
    items: tuple[str, ...]
    sources: str = ""


def plan_chunks(recipe: Recipe, chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[Chunk]:
    """Split ``recipe.plan()`` into chunks of at most ``chunk_size`` items, in plan order."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    items, sources = recipe.plan(), sources_digest(recipe.config)
    return [Chunk(i // chunk_size, tuple(items[i:i + chunk_size]), sources) for i in range(0, len(items), chunk_size)]


def sources_digest(config: RecipeConfig) -> str:
    """sha256 over every file under the config's path fields (``src``, ``backgrounds``): the field's name, then each
    file's path in that folder and its bytes (:func:`digest_files`), hidden files skipped; "" for a config without
    any (the synthetic recipe)."""
    roots = sorted((name, value) for name, value in config if isinstance(value, Path))
    if not roots:
        return ""
    digest = hashlib.sha256()
    for name, root in roots:
        digest.update(name.encode("utf-8"))
        files = [root] if root.is_file() else sorted(
            path for path in root.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts))
        digest_files(digest, root, files)
    return digest.hexdigest()


def shard_path(out_dir: Path, recipe_name: str, index: int) -> Path:
    """``out_dir/RECIPE-NNNNNN.tar``."""
    return Path(out_dir) / f"{recipe_name}-{index:06d}{SHARD_SUFFIX}"


def plan_hash(recipe: Recipe, chunk: Chunk) -> str:
    """Hash of the recipe's config, the chunk's items and its sources' digest: a shard built from another plan is
    stale."""
    sources = f"\n{chunk.sources}" if chunk.sources else ""  # none: the hash a synthetic shard always had
    text = recipe.config.model_dump_json() + "\n" + "\n".join(chunk.items) + sources
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def completed_report(recipe: Recipe, chunk: Chunk, out_dir: Path) -> ShardReport | None:
    """The chunk's report if its shard is complete and was built from the same plan, else None."""
    report = read_complete_report(shard_path(out_dir, recipe.name, chunk.index))
    return report if report is not None and report.plan_hash == plan_hash(recipe, chunk) else None


def build_shard(recipe: Recipe, chunk: Chunk, out_dir: Path) -> ShardReport:
    """Build one chunk's shard (skipped when already complete); return its report.

    Inputs that raise :class:`SkipInput` are listed in the report. No tar is written
    when every input was skipped. Errors writing the output propagate (``OSError``).
    """
    done = completed_report(recipe, chunk, out_dir)
    if done is not None:
        log.info("%s already complete (%d samples), not rebuilt", done.shard, done.written)
        return done
    path = shard_path(out_dir, recipe.name, chunk.index)
    report_path(path).unlink(missing_ok=True)  # a stale report must never vouch for the new shard
    skipped: list[Skipped] = []
    samples = _samples(recipe, chunk, skipped)
    first = next(samples, None)
    if first is None:
        path.unlink(missing_ok=True)
        written, size, digest = 0, 0, None
    else:
        shard = write_shard(path, chain([first], samples))
        written, size, digest = shard.count, shard.bytes, shard.sha256
    report = ShardReport(shard=path.name, recipe=recipe.name, plan_hash=plan_hash(recipe, chunk),
                         written=written, bytes=size, sha256=digest, skipped=skipped)
    write_report(path, report)
    log.info("%s: %d samples written, %d inputs skipped", path.name, written, len(skipped))
    return report


def _samples(recipe: Recipe, chunk: Chunk, skipped: list[Skipped]) -> Iterator[LayeredSample]:
    for item in chunk.items:
        try:
            yield from recipe.make(item)  # samples made before a SkipInput are kept
        except SkipInput as skip:
            log.warning("skipped %s: %s", skip.input, skip.reason)
            skipped.append(Skipped(input=skip.input, reason=skip.reason))


def remove_partials(out_dir: Path, recipe_name: str) -> list[Path]:
    """Delete this recipe's temporaries left by a killed build (hidden ``*.partial`` files); return them."""
    leftovers = sorted(Path(out_dir).glob(f".{recipe_name}-*.partial"))
    for path in leftovers:
        path.unlink()
    return leftovers


def prune_stale_shards(out_dir: Path, recipe_name: str, num_chunks: int) -> list[Path]:
    """Delete this recipe's shards and reports numbered ``>= num_chunks``: left by a larger earlier plan."""
    stale = []
    for path in sorted(Path(out_dir).glob(f"{recipe_name}-*")):
        match = _SHARD_FILE.match(path.name)
        if match and match["recipe"] == recipe_name and int(match["index"]) >= num_chunks:
            path.unlink()
            stale.append(path)
    return stale


def finish_build(out_dir: Path, recipe_name: str, num_chunks: int) -> Manifest:
    """Prune stale shards of this recipe and write ``manifest.json`` for the whole folder."""
    for path in prune_stale_shards(out_dir, recipe_name, num_chunks):
        log.info("removed %s, left by an earlier, larger build", path.name)
    return write_manifest(out_dir)


def build(recipe: Recipe, out_dir: Path, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Manifest:
    """Build every chunk in-process, one after the other, then the manifest (progress in the log)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_partials(out_dir, recipe.name)
    chunks = plan_chunks(recipe, chunk_size)
    for chunk in chunks:
        build_shard(recipe, chunk, out_dir)
    return finish_build(out_dir, recipe.name, len(chunks))

