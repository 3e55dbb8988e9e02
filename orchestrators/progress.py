"""Run progress and outcome tallies, shared by the orchestrators (custom status) and the status API.

Pure and JSON-native: custom status is replayed and stored by Durable, so it stays small (counters per
stream, never records or ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from shared.contracts import PartitionResult


class StreamProgress(TypedDict):
    total: int  # partitions known so far (grows as parents are listed)
    done: int
    ok: int
    skipped: int
    failed: int
    records: int


def empty(total: int = 0) -> StreamProgress:
    return StreamProgress(total=total, done=0, ok=0, skipped=0, failed=0, records=0)


def tally(results: Iterable[PartitionResult]) -> dict[str, StreamProgress]:
    """Per-stream counters of finished partitions."""
    out: dict[str, StreamProgress] = {}
    for result in results:
        entry = out.setdefault(result["stream"], empty())
        add_result(entry, result)
        entry["total"] += 1
    return out


def add_result(entry: StreamProgress, result: PartitionResult) -> None:
    entry["done"] += 1
    entry[result["status"]] += 1
    entry["records"] += int(result.get("records", 0))


def merge(into: dict[str, StreamProgress], other: Mapping[str, Mapping[str, Any]]) -> dict[str, StreamProgress]:
    """Add `other`'s counters to `into` (in place) and return it."""
    for stream, counts in other.items():
        entry = into.setdefault(stream, empty())
        for key in ("total", "done", "ok", "skipped", "failed", "records"):
            entry[key] += int(counts.get(key, 0))
    return into


def combine(parts: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, StreamProgress]:
    out: dict[str, StreamProgress] = {}
    for part in parts:
        merge(out, part)
    return out


def totals(streams: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Run-wide counters (for the headline of the status API and the local runner)."""
    keys = ("total", "done", "ok", "skipped", "failed", "records")
    return {key: sum(int(entry.get(key, 0)) for entry in streams.values()) for key in keys}


def status(phase: str, run_id: str, streams: Mapping[str, Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    """The custom-status document."""
    return {"phase": phase, "run_id": run_id, "streams": dict(streams), **extra}


def live_streams(run_status: Mapping[str, Any] | None, group_statuses: Iterable[Mapping[str, Any] | None],
                 chunk_statuses: Iterable[Mapping[str, Any] | None] = ()) -> dict[str, StreamProgress]:
    """Per-stream progress of a run while it runs.

    A finished group is already counted in the run's own status. A running group knows its totals and its
    finished chunks; its running chunks add what they have done so far (a chunk of lanes: its finished lanes,
    and each running lane its own progress, passed here as chunk statuses too).
    """
    streams: dict[str, StreamProgress] = {}
    merge(streams, (run_status or {}).get("streams", {}))
    pending = {name for name, entry in streams.items() if entry["total"] == 0}
    for group_status in group_statuses:
        merge(streams, {k: v for k, v in (group_status or {}).get("streams", {}).items() if k in pending})
    for chunk_status in chunk_statuses:
        for stream, counts in (chunk_status or {}).get("streams", {}).items():
            if stream in pending:
                merge(streams, {stream: {**counts, "total": 0}})
    return streams
