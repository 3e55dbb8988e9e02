"""The sync activities. Each one decodes its JSON input, calls the engine and returns JSON-native values.

`sync_partition` never raises for a per-partition failure (the engine returns a failed record), so a fan-out
accounts for every partition; an exception here means the worker or the engine crashed, and the orchestrator's
durable retry runs the activity again (the engine writes deterministic blob names, so a rerun replaces data).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import azure.durable_functions as df

from activities import results as saved
from orchestrators import names
from orchestrators.plan import SyncPlan, plan_run
from shared import sync as engine
from shared.config import Settings, load_settings, with_overrides
from shared.contracts import ManifestSummary, ParentListing, PartitionResult, RunInfo
from shared.streams import CATALOG

log = logging.getLogger(__name__)
bp = df.Blueprint()


@cache
def settings() -> Settings:
    """App settings, read once per worker process (they only change with a restart)."""
    return load_settings()


def _activity(name: str) -> Callable[[Callable[..., Awaitable[Any]]], Any]:
    decorator: Callable[[Callable[..., Awaitable[Any]]], Any] = bp.activity_trigger(input_name="request",
                                                                                     activity=name)
    return decorator


@_activity(names.PLAN_SYNC)
async def plan_sync(request: RunInfo) -> SyncPlan:
    """The run's partitions from the catalog, the settings and the request's overrides, plus the census of
    streams that have no checkpoint yet (their partitions skip the checkpoint read)."""
    effective = with_overrides(settings(), request["overrides"])
    plan = plan_run(CATALOG, effective.streams)
    fresh = await engine.census(settings(), request, plan["streams"])
    if fresh:
        plan["fresh"] = fresh
    return plan


@_activity(names.LIST_PARENTS)
async def list_parents(request: dict[str, Any]) -> ParentListing:
    listing = await engine.list_parents(settings(), request["run"], request["parent_stream"])
    log.info("parents listed: stream=%s count=%d chunks=%d", listing["parent_stream"], listing["count"],
             len(listing["chunks"]))
    return listing


@_activity(names.READ_PARENT_CHUNK)
async def read_parent_chunk(request: dict[str, Any]) -> list[str]:
    return await engine.read_parent_chunk(settings(), request["path"])


@_activity(names.SYNC_PARTITION)
async def sync_partition(request: dict[str, Any]) -> PartitionResult:
    """One (stream, parent) copy; the engine logs the structured partition line."""
    return await engine.sync_partition(settings(), request["run"], request["stream"], request.get("parent_id"),
                                       fresh=bool(request.get("fresh")))


@_activity(names.SAVE_RESULTS)
async def save_results(request: dict[str, Any]) -> str:
    return await saved.save_results(settings(), request["run"], request["key"], request["results"])


@_activity(names.WRITE_MANIFEST)
async def write_manifest(request: dict[str, Any]) -> ManifestSummary:
    """The manifest over every partition: records saved by chunk rounds plus the ones passed inline."""
    run: RunInfo = request["run"]
    results = await saved.load_results(settings(), run) + list(request["results"])
    summary = await engine.write_manifest(settings(), run, results)
    log.info(
        "sync run finished: run_id=%s tenant=%s trigger=%s status=%s partitions=%d ok=%d skipped=%d failed=%d "
        "records=%d manifest=%s", run["run_id"], run["tenant_id"], run["trigger"], summary["status"],
        summary["partitions"], summary["ok"], summary["skipped"], summary["failed"], summary["records"],
        summary["manifest_path"], extra={"sync_run": dict(summary)})
    return summary
