"""One local sync: the function app's real orchestrators and activities on the local Durable runtime."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

import function_app
from activities import sync as activities
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime, Instance, RuntimeOptions
from orchestrators import names
from orchestrators import progress as pg
from shared.config import load_settings
from shared.runtime import close_engines, get_engine
from shared.streams import CATALOG


@dataclass(slots=True)
class StreamReport:
    stream: str
    partitions: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    records: int = 0
    seconds: float = 0.0  # sum of partition durations (they overlap: this is work, not wall time)


@dataclass(slots=True)
class RunReport:
    tenant_id: str
    instance_id: str
    status: str  # succeeded / failed (manifest), or the runtime status when the orchestration itself failed
    summary: dict[str, Any] | None
    error: str | None
    streams: list[StreamReport] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    skips: list[dict[str, Any]] = field(default_factory=list)
    output_url: str = ""
    success_marker: bool = False
    wall_seconds: float = 0.0


def live_progress(runtime: DurableRuntime, instance_id: str) -> dict[str, pg.StreamProgress]:
    """Per-stream progress of a run from every instance's custom status (what GET /api/syncs/{id} merges)."""
    run = runtime.get(instance_id)
    if run is None or not isinstance(run.custom_status, dict):
        return {}
    groups = [_custom(runtime.get(gid)) for gid in (run.custom_status.get("groups") or {}).values()]
    chunks = [_custom(runtime.get(cid)) for group in groups for cid in (group or {}).get("chunks", [])]
    chunks += [_custom(runtime.get(lane)) for chunk in chunks for lane in (chunk or {}).get("lanes", [])]
    return pg.live_streams(run.custom_status, groups, chunks)


def _custom(instance: Instance | None) -> dict[str, Any] | None:
    return instance.custom_status if instance is not None and isinstance(instance.custom_status, dict) else None


async def run_sync(
    tenant_ids: list[str],
    overrides: Mapping[str, Any],
    *,
    concurrency: int = 16,
    limits: Mapping[str, Any] | None = None,
    on_progress: Callable[[dict[str, dict[str, pg.StreamProgress]]], None] | None = None,
    poll_seconds: float = 0.2,
) -> list[RunReport]:
    """Run one sync per tenant to completion with the settings already in the environment.

    `concurrency` plays host.json `maxConcurrentActivityFunctions`; `limits` is the run request's fan-out
    object (orchestrators.sync.Limits), for tuning runs; None keeps the orchestrator's defaults."""
    activities.settings.cache_clear()
    settings = load_settings()
    runtime = DurableRuntime(FunctionIndex.from_app(function_app.app),
                             RuntimeOptions(max_concurrent_activities=concurrency, virtual_timers=False,
                                                            activity_timeout=3600.0))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        ids = []
        for tenant_id in tenant_ids:
            request: dict[str, Any] = {"tenant_id": tenant_id, "trigger": "local", "overrides": dict(overrides)}
            if limits:
                request["limits"] = dict(limits)
            ids.append(await runtime.start_new(names.SYNC_RUN, names.run_instance_id(tenant_id),
                                               json.dumps(request)))
        waiting = [asyncio.ensure_future(runtime.wait(i)) for i in ids]
        while not all(w.done() for w in waiting):
            if on_progress is not None:
                on_progress({i: live_progress(runtime, i) for i in ids})
            await asyncio.wait(waiting, timeout=poll_seconds)
        if on_progress is not None:
            on_progress({i: live_progress(runtime, i) for i in ids})
        wall = loop.time() - started
        reports = []
        for tenant_id, instance_id in zip(tenant_ids, ids, strict=True):
            report = await _report(runtime.instances[instance_id], tenant_id, settings)
            report.wall_seconds = wall
            reports.append(report)
        return reports
    finally:
        await runtime.close()
        await close_engines()


async def _report(instance: Instance, tenant_id: str, settings: Any) -> RunReport:
    if instance.status != "Completed":
        return RunReport(tenant_id, instance.instance_id, instance.status, None, instance.error)
    summary: dict[str, Any] = instance.output
    report = RunReport(tenant_id, instance.instance_id, summary["status"], summary, None,
                       success_marker=bool(summary.get("success_marker")))
    prefix = summary["manifest_path"].split("/_runs/")[0]
    report.output_url = f"{settings.output_account_url}/{settings.output_container}/{prefix}/"
    engine = await get_engine(settings)
    document = orjson.loads(await (await engine.blob(summary["manifest_path"]).download_blob()).readall())
    per_stream: dict[str, StreamReport] = {}
    for result in document.get("partitions", []):
        entry = per_stream.setdefault(result["stream"], StreamReport(result["stream"]))
        entry.partitions += 1
        setattr(entry, result["status"], getattr(entry, result["status"]) + 1)
        entry.records += int(result.get("records") or 0)
        entry.seconds += float(result.get("duration_s") or 0.0)
        if result["status"] == "failed":
            report.failures.append(result)
        elif result["status"] == "skipped":
            report.skips.append(result)
    order = {name: i for i, name in enumerate(CATALOG)}
    report.streams = sorted(per_stream.values(), key=lambda s: order.get(s.stream, len(order)))
    return report
