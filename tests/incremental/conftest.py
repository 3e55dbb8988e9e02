"""Incremental-sync fixtures: a stack of our own (tests here mutate the tenant between runs, which must not
disturb other suites' oracles), settings with a fresh container per test (checkpoints start empty), and a
consumer that applies change records by id the way docs/incremental.md tells lake readers to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.process import start_stack
from localrun.settings import applied
from shared.config import Settings, load_settings
from shared.contracts import PartitionResult, RunInfo
from shared.manifest import write_manifest
from shared.runtime import close_engines
from shared.streams import CATALOG
from tests.conftest import AdminClient, RunningStack
from tests.engine.conftest import engine_environ, unique
from tests.engine.runner import read_records, run_streams

STACK_ARGS = ("--users", "12", "--throttle", "off", "--seed", "11", "--mailboxes-with-child-folders", "4")

Key = tuple[str | None, str]


def stack_fixture(tmp: pytest.TempPathFactory, *args: str) -> Iterator[RunningStack]:
    root = tmp.mktemp("incremental-stack")
    proc = start_stack(root / "state", root / "devstack.env", *args)
    try:
        yield RunningStack(proc.env, proc, AdminClient(proc.env))
    finally:
        survivors = proc.stop()
        if survivors:
            raise AssertionError(f"devstack teardown left processes running: {survivors}\n{proc.log_tail()}")


@pytest.fixture(scope="package")
def istack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    yield from stack_fixture(tmp_path_factory, *STACK_ARGS)


def exported(stack: RunningStack) -> Iterator[None]:
    with applied(stack.env.workload_environment()):
        yield


@pytest.fixture()
def iworkload(istack: RunningStack) -> Iterator[None]:
    yield from exported(istack)


def lake_settings(stack: RunningStack, **overrides: str) -> Settings:
    """Settings for a lake of its own: a fresh container, so checkpoints start empty. The governor is off: these
    stacks serve Graph without throttling, and pacing hundreds of log slices to the real 5 per 10 s would only
    make the tests slow (tests/bench/test_multiworker.py runs the engine with it)."""
    values = {"OUTPUT_CONTAINER": unique("inc").lower(), "GRAPH_GOVERNOR": "off", **overrides}
    return load_settings(engine_environ(stack, **values))


@pytest.fixture()
async def isettings(istack: RunningStack, iworkload: None) -> AsyncIterator[Settings]:
    yield lake_settings(istack)
    await close_engines()


def new_run(stack: RunningStack, **overrides: Any) -> RunInfo:
    return RunInfo(run_id=unique("run"), tenant_id=stack.env.tenant_id, trigger="local",
                   started_at=datetime.now(UTC).isoformat(), overrides=dict(overrides))


async def sync(settings: Settings, stack: RunningStack, streams: list[str],
               **overrides: Any) -> dict[str, list[PartitionResult]]:
    """One run the way the orchestrator does it: partitions, then the manifest (which prunes checkpoints)."""
    return (await sync_run(settings, stack, streams, **overrides))[1]


async def sync_run(settings: Settings, stack: RunningStack, streams: list[str],
                   **overrides: Any) -> tuple[RunInfo, dict[str, list[PartitionResult]]]:
    run = new_run(stack, **overrides)
    results = await run_streams(settings, run, streams, concurrency=8)
    await write_manifest(settings, run, [p for parts in results.values() for p in parts])
    return run, results


async def records_of(settings: Settings, results: dict[str, list[PartitionResult]]
                     ) -> dict[str, list[dict[str, Any]]]:
    """Every record written per stream (ok partitions only), in partition order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for stream, parts in results.items():
        rows: list[dict[str, Any]] = []
        for part in parts:
            if part["status"] == "ok" and part["blob_path"]:
                rows += await read_records(settings, part["blob_path"])
        out[stream] = rows
    return out


def key_of(stream: str, record: dict[str, Any]) -> Key:
    spec = CATALOG[stream]
    parent = record.get(spec.parent_key) if spec.parent_key else None
    return parent, str(record["id"])


class Consumer:
    """A lake reader following docs/incremental.md: a `snapshot` partition replaces that partition's state, a
    `changes` partition is applied record by record (upserts merge by id, deletions remove), runs in order."""

    def __init__(self) -> None:
        self.state: dict[str, dict[Key, dict[str, Any]]] = {}

    async def apply(self, settings: Settings, results: dict[str, list[PartitionResult]]) -> None:
        for stream, parts in results.items():
            table = self.state.setdefault(stream, {})
            for part in parts:
                if part["status"] != "ok" or not part["blob_path"]:
                    continue
                rows = await read_records(settings, part["blob_path"])
                if part["kind"] in ("snapshot", "full"):
                    parent = part["parent_id"]
                    for key in [k for k in table if k[0] == parent or CATALOG[stream].parent_key is None]:
                        del table[key]
                for row in rows:
                    key = key_of(stream, row)
                    if row.get("_change") == "deleted":
                        table.pop(key, None)
                    else:
                        table[key] = {**table.get(key, {}), **row}
            if CATALOG[stream].partition_parent is not None:
                # A parent the run no longer lists (deleted, out of scope) takes its partition with it.
                live = {p["parent_id"] for p in parts if p["status"] in ("ok", "failed")}
                for key in [k for k in table if k[0] not in live]:
                    del table[key]

    def ids(self, stream: str) -> set[Key]:
        return set(self.state.get(stream, {}))
