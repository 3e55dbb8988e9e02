"""The run manifest (`_manifest.json`) and, only when nothing failed, the `_SUCCESS` marker beside it.

Readers of the lake wait for `_SUCCESS`; the manifest says what was copied, skipped (and why) and failed.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import orjson
from azure.core.exceptions import ResourceNotFoundError

from shared.config import Settings
from shared.contracts import ManifestSummary, PartitionResult, RunInfo
from shared.incremental import prune_checkpoints
from shared.runtime import get_engine
from shared.writer.paths import manifest_folder


def summarize(run: RunInfo, results: list[PartitionResult], manifest_path: str) -> ManifestSummary:
    """Pure aggregation of partition results."""
    streams: dict[str, dict[str, int]] = {}
    totals = {"ok": 0, "skipped": 0, "failed": 0, "records": 0}
    for r in results:
        entry = streams.setdefault(r["stream"], {"partitions": 0, "ok": 0, "skipped": 0, "failed": 0, "records": 0,
                                                 "bytes": 0, "requests": 0, "retries": 0, "throttled": 0,
                                                 "snapshot": 0, "changes": 0, "full": 0, "resynced": 0})
        entry["partitions"] += 1
        entry[r["status"]] += 1
        if r["status"] == "ok":  # what a consumer does with the blob: replace (snapshot, full) or apply (changes)
            entry[r.get("kind", "full")] += 1
            entry["resynced"] += 1 if r.get("resynced") else 0
        for key in ("records", "bytes", "requests", "retries", "throttled"):
            entry[key] += int(r.get(key, 0) or 0)  # type: ignore[call-overload]
        totals[r["status"]] += 1
        totals["records"] += int(r.get("records", 0) or 0)
    failed = totals["failed"]
    return ManifestSummary(
        run_id=run["run_id"], tenant_id=run["tenant_id"], status="failed" if failed else "succeeded",
        manifest_path=manifest_path, success_marker=not failed, partitions=len(results), ok=totals["ok"],
        skipped=totals["skipped"], failed=failed, records=totals["records"], streams=streams,
    )


async def write_manifest(settings: Settings, run: RunInfo, results: list[PartitionResult]) -> ManifestSummary:
    engine = await get_engine(settings)
    await engine.ensure_container()
    folder = manifest_folder(settings.output_prefix, run)
    summary = summarize(run, results, f"{folder}/_manifest.json")
    document: dict[str, Any] = {
        "run": dict(run), "generated_at": datetime.now(UTC).isoformat(), "summary": dict(summary),
        "partitions": results,
    }
    await engine.blob(summary["manifest_path"]).upload_blob(orjson.dumps(document, option=orjson.OPT_INDENT_2),
                                                            overwrite=True)
    await prune_checkpoints(engine, settings, run, results)
    marker = engine.blob(f"{folder}/_SUCCESS")
    if summary["success_marker"]:
        await marker.upload_blob(b"", overwrite=True)
    else:
        with contextlib.suppress(ResourceNotFoundError):
            await marker.delete_blob()  # a re-run that now fails must not leave an earlier success marker
    return summary
