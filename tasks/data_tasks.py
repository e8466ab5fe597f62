"""Prefect tasks around :mod:`data_recipes`: plan a build, build one shard, write the manifest.

Only shard building is cached (inputs + task source): a rerun of a chunk whose
shard is complete returns the cached report. The flow forces a rebuild
(``refresh_cache``) of chunks whose shard is missing on disk, and
:func:`data_recipes.build.build_shard` itself skips complete shards too. Retries
happen only on ``OSError`` (I/O); bad input never reaches a retry, it is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from data_recipes.build import Chunk, build_shard, completed_report, finish_build, plan_chunks, remove_partials
from data_recipes.manifest import Manifest, ShardReport
from data_recipes.registry import AnyRecipeConfig, make_recipe


def retry_on_io_error(task, task_run, state) -> bool:
    """``retry_condition_fn``: retry when the run failed with an ``OSError``, never otherwise."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


@dataclass(frozen=True)
class BuildPlan:
    """A build's chunks and which of them already have a complete shard on disk."""

    chunks: list[Chunk]
    complete: frozenset[int]


@task(name="plan-build", cache_policy=NO_CACHE)
def plan_build_task(config: AnyRecipeConfig, out_dir: str, chunk_size: int) -> BuildPlan:
    """Plan the chunks; clear temporaries of a killed earlier run."""
    recipe, out = make_recipe(config), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for leftover in remove_partials(out, recipe.name):
        get_run_logger().info("removed %s, left by an interrupted build", leftover.name)
    chunks = plan_chunks(recipe, chunk_size)
    complete = frozenset(c.index for c in chunks if completed_report(recipe, c, out) is not None)
    return BuildPlan(chunks, complete)


@task(
    name="build-shard",
    task_run_name="build-shard-{chunk.index}",
    cache_policy=INPUTS + TASK_SOURCE,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_io_error,
)
def build_shard_task(config: AnyRecipeConfig, chunk: Chunk, out_dir: str) -> ShardReport:
    """Build one chunk's shard (a complete shard is kept, not rebuilt)."""
    report = build_shard(make_recipe(config), chunk, Path(out_dir))
    get_run_logger().info("%s: %d samples, %d inputs skipped", report.shard, report.written, len(report.skipped))
    return report


@task(name="finish-build", cache_policy=NO_CACHE)
def finish_build_task(recipe_name: str, out_dir: str, num_chunks: int) -> Manifest:
    """Remove shards a larger earlier plan left, write ``manifest.json``."""
    return finish_build(Path(out_dir), recipe_name, num_chunks)
