"""Prefect flow ``build-data``: build a recipe's shards chunk by chunk, then the manifest.

Chunks are mapped over ``build-shard`` tasks (one task run, one shard each, visible
in the Prefect UI), progress goes to the logs and to a progress artifact. A rerun
rebuilds only chunks whose shard is missing: complete ones come from the task cache
(or, without a cache record, are kept as they are on disk).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from data_recipes.build import DEFAULT_CHUNK_SIZE
from data_recipes.manifest import Manifest
from data_recipes.registry import AnyRecipeConfig
from tasks.data_tasks import build_shard_task, finish_build_task, plan_build_task


@flow(name="build-data", task_runner=ThreadPoolTaskRunner(max_workers=2))
def build_data(config: AnyRecipeConfig, out_dir: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Manifest:
    """Build ``config``'s recipe into ``out_dir`` (shards + manifest.json); return the manifest."""
    logger = get_run_logger()
    plan = plan_build_task(config, out_dir, chunk_size)
    todo = [c for c in plan.chunks if c.index not in plan.complete]
    done = [c for c in plan.chunks if c.index in plan.complete]
    logger.info("%s: %d chunks, %d already complete", config.recipe, len(plan.chunks), len(done))
    futures = [
        *build_shard_task.map(unmapped(config), done, unmapped(out_dir)),
        *build_shard_task.with_options(refresh_cache=True).map(unmapped(config), todo, unmapped(out_dir)),
    ]
    progress = create_progress_artifact(0.0, description=f"{config.recipe} shards built into {out_dir}")
    for finished, future in enumerate(as_completed(futures), start=1):
        report = future.result()
        logger.info("shard %d/%d: %s, %d samples, %d skipped",
                    finished, len(futures), report.shard, report.written, len(report.skipped))
        update_progress_artifact(progress, 100.0 * finished / len(futures))
    manifest = finish_build_task(config.recipe, out_dir, len(plan.chunks))
    logger.info("%s: %d samples in %s, %d inputs skipped", config.recipe, manifest.counts.get(config.recipe, 0),
                out_dir, len(manifest.skipped))
    return manifest


def run_build(config: AnyRecipeConfig, out_dir: Path, chunk_size: int = DEFAULT_CHUNK_SIZE,
              workers: int = 2) -> Manifest:
    """Run :func:`build_data` with ``workers`` shard tasks in parallel (threads)."""
    flow_with_workers = build_data.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    return flow_with_workers(config, str(Path(out_dir).resolve()), chunk_size)
