"""A simulated engine for exercising the orchestrators at any scale without servers.

It replaces the five engine activities with in-memory versions over a synthetic tenant, so the real
orchestrators run through the real SDK with real histories: used by `python -m localrun measure` and by the
orchestration tests. Records what it was asked, in order, so tests can check ordering and coverage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrators import names
from orchestrators.plan import SyncPlan, plan_run
from shared.contracts import ManifestSummary, ParentListing, PartitionResult, RunInfo
from shared.streams import CATALOG

Behaviour = Callable[[str, str | None, int], PartitionResult | None]


@dataclass
class SimulatedTenant:
    """Parents per parent stream; every partition returns `records_per_partition` records unless overridden."""

    parents: dict[str, list[str]]
    streams: list[str] = field(default_factory=lambda: list(CATALOG))
    chunk_size: int = 500
    records_per_partition: int = 3
    behaviour: Behaviour | None = None  # (stream, parent, attempt) -> result to return instead (or raise)
    list_failures: set[str] = field(default_factory=set)  # parent streams whose listing always crashes
    save_failures: set[str] = field(default_factory=set)  # results keys whose save always crashes
    gate: asyncio.Event | None = None  # partitions wait for it: keeps a run "running" as long as a test needs
    hold: set[tuple[str, str | None]] = field(default_factory=set)  # partitions that wait until `release`d
    parents_from_run: bool = False  # plan as if parents were read from the run's own copy
    calls: list[tuple[str, Any]] = field(default_factory=list)
    attempts: dict[tuple[str, str | None], int] = field(default_factory=dict)
    chunks: dict[str, list[str]] = field(default_factory=dict)
    manifest_inputs: list[list[PartitionResult]] = field(default_factory=list)
    saved: dict[str, list[PartitionResult]] = field(default_factory=dict)
    in_flight: int = 0
    _releases: dict[tuple[str, str | None], asyncio.Event] = field(default_factory=dict)
    max_in_flight: int = 0

    @classmethod
    def users(cls, count: int, streams: list[str], **kwargs: Any) -> SimulatedTenant:
        """`count` users, each with one drive (so drive items fan out as wide as users)."""
        users = [f"user-{i:06d}" for i in range(count)]
        return cls(parents={"users": users, "drives": [f"drive-{u}" for u in users]}, streams=streams, **kwargs)

    def activities(self) -> Mapping[str, Callable[[Any], Any]]:
        return {
            names.PLAN_SYNC: self.plan_sync,
            names.LIST_PARENTS: self.list_parents,
            names.READ_PARENT_CHUNK: self.read_parent_chunk,
            names.SYNC_PARTITION: self.sync_partition,
            names.SAVE_RESULTS: self.save_results,
            names.WRITE_MANIFEST: self.write_manifest,
        }

    def plan_sync(self, run: RunInfo) -> SyncPlan:
        self.calls.append((names.PLAN_SYNC, run["run_id"]))
        return plan_run(CATALOG, run["overrides"].get("streams") or self.streams,
                        parents_from_run=self.parents_from_run)

    def list_parents(self, request: dict[str, Any]) -> ParentListing:
        stream = request["parent_stream"]
        self.calls.append((names.LIST_PARENTS, stream))
        if stream in self.list_failures:
            raise ConnectionResetError(f"listing {stream} crashed")
        ids = self.parents.get(stream, [])
        paths = []
        for index in range(0, len(ids), self.chunk_size):
            path = f"{request['run']['run_id']}/_parents/{stream}/{index // self.chunk_size:05d}.json"
            self.chunks[path] = ids[index:index + self.chunk_size]
            paths.append(path)
        return ParentListing(parent_stream=stream, count=len(ids), chunks=paths)

    def read_parent_chunk(self, request: dict[str, Any]) -> list[str]:
        self.calls.append((names.READ_PARENT_CHUNK, request["path"]))
        return self.chunks[request["path"]]

    async def sync_partition(self, request: dict[str, Any]) -> PartitionResult:
        stream, parent = request["stream"], request["parent_id"]
        key = (stream, parent)
        self.attempts[key] = attempt = self.attempts.get(key, 0) + 1
        self.calls.append((names.SYNC_PARTITION, key))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if self.gate is not None:
                await self.gate.wait()
            if key in self.hold:
                await self._held(key).wait()
            if self.behaviour is not None:
                special = self.behaviour(stream, parent, attempt)
                if special is not None:
                    return special
            return partition(stream, parent, "ok", records=self.records_per_partition)
        finally:
            self.in_flight -= 1

    def _held(self, key: tuple[str, str | None]) -> asyncio.Event:
        return self._releases.setdefault(key, asyncio.Event())

    def release(self, key: tuple[str, str | None]) -> None:
        """Let a held partition finish."""
        self._held(key).set()

    def save_results(self, request: dict[str, Any]) -> str:
        self.calls.append((names.SAVE_RESULTS, request["key"]))
        key: str = request["key"]
        if key in self.save_failures:
            raise ConnectionResetError(f"saving {key} crashed")
        self.saved[key] = request["results"]
        return key

    def write_manifest(self, request: dict[str, Any]) -> ManifestSummary:
        run: RunInfo = request["run"]
        results: list[PartitionResult] = [r for key in sorted(self.saved) for r in self.saved[key]]
        results += request["results"]
        self.calls.append((names.WRITE_MANIFEST, len(results)))
        self.manifest_inputs.append(results)
        streams: dict[str, dict[str, int]] = {}
        for result in results:
            entry = streams.setdefault(result["stream"], {"partitions": 0, "ok": 0, "skipped": 0, "failed": 0,
                                                          "records": 0})
            entry["partitions"] += 1
            entry[result["status"]] += 1
            entry["records"] += result["records"]
        failed = sum(1 for r in results if r["status"] == "failed")
        return ManifestSummary(
            run_id=run["run_id"], tenant_id=run["tenant_id"], status="failed" if failed else "succeeded",
            manifest_path=f"{run['run_id']}/_manifest.json", success_marker=not failed, partitions=len(results),
            ok=sum(1 for r in results if r["status"] == "ok"),
            skipped=sum(1 for r in results if r["status"] == "skipped"), failed=failed,
            records=sum(r["records"] for r in results), streams=streams)


def partition(stream: str, parent: str | None, status: str, records: int = 0, **extra: Any) -> PartitionResult:
    """A partition outcome record as the engine returns it."""
    result: dict[str, Any] = {
        "stream": stream, "parent_id": parent, "status": status, "kind": "full", "records": records, "pages": 1,
        "requests": 1, "retries": 0, "throttled": 0, "bytes": records * 100, "duration_s": 0.01,
        "blob_path": f"{stream}/{parent or '_'}.jsonl.gz" if status == "ok" else None, **extra,
    }
    return result  # type: ignore[return-value]
