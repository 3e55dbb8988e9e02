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

from activities import engine
from orchestrators import names
from orchestrators.plan import SyncPlan, plan_run
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
    """The run's partitions from the catalog, the settings and the request's overrides."""
    effective = with_overrides(settings(), request["overrides"])
    return plan_run(CATALOG, effective.streams)


@_activity(names.LIST_PARENTS)
async def list_parents(request: dict[str, Any]) -> ParentListing:
    listing = await engine.list_parents(request["run"], request["parent_stream"])
    log.info("parents listed: stream=%s count=%d chunks=%d", listing["parent_stream"], listing["count"],
             len(listing["chunks"]))
    return listing


@_activity(names.READ_PARENT_CHUNK)
async def read_parent_chunk(request: dict[str, Any]) -> list[str]:
    return await engine.read_parent_chunk(request["path"])


@_activity(names.SYNC_PARTITION)
async def sync_partition(request: dict[str, Any]) -> PartitionResult:
    run: RunInfo = request["run"]
    result = await engine.sync_partition(run, request["stream"], request.get("parent_id"))
    log_partition(run, result)
    return result


@_activity(names.WRITE_MANIFEST)
async def write_manifest(request: dict[str, Any]) -> ManifestSummary:
    run: RunInfo = request["run"]
    summary = await engine.write_manifest(run, request["results"])
    log.info(
        "sync run finished: run_id=%s tenant=%s trigger=%s status=%s partitions=%d ok=%d skipped=%d failed=%d "
        "records=%d manifest=%s", run["run_id"], run["tenant_id"], run["trigger"], summary["status"],
        summary["partitions"], summary["ok"], summary["skipped"], summary["failed"], summary["records"],
        summary["manifest_path"], extra={"sync_run": dict(summary)})
    return summary


def log_partition(run: RunInfo, result: PartitionResult) -> None:
    """One line per partition, key=value so Application Insights queries can parse it; never record data."""
    fields = {
        "run_id": run["run_id"], "tenant": run["tenant_id"], "stream": result["stream"],
        "parent": result["parent_id"], "status": result["status"], "records": result["records"],
        "requests": result["requests"], "throttled": result["throttled"], "retries": result["retries"],
        "duration_s": round(result["duration_s"], 3), "reason": result.get("reason"),
        "error_code": result.get("error_code"), "request_id": result.get("request_id"),
    }
    level = logging.WARNING if result["status"] == "failed" else logging.INFO
    log.log(level, "partition %s", " ".join(f"{k}={v}" for k, v in fields.items() if v is not None),
            extra={"partition": fields})
