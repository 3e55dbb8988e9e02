"""Audit logs and sign-ins by time window: a record arriving late inside the overlap is written exactly once,
and a run with nothing new writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.config import Settings
from tests.conftest import RunningStack
from tests.engine.oracle import Oracle
from tests.engine.runner import read_records
from tests.incremental.conftest import sync

STREAMS = {"audit_logs_directory": ("directoryAudits", "activityDateTime", "/auditLogs/directoryAudits"),
           "audit_logs_signins": ("signIns", "createdDateTime", "/auditLogs/signIns")}


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


async def written(settings: Settings, results: dict, stream: str) -> list[str]:  # type: ignore[type-arg]
    (part,) = results[stream]
    assert part["status"] == "ok", part
    rows = await read_records(settings, part["blob_path"])
    assert all(r["_change"] == "upsert" for r in rows)
    return [r["id"] for r in rows]


async def test_late_records_inside_the_overlap_are_caught_once(istack: RunningStack, isettings: Settings) -> None:
    oracle = Oracle(istack)
    first = await sync(isettings, istack, list(STREAMS))
    for stream, (_, _, path) in STREAMS.items():
        assert first[stream][0]["kind"] == "snapshot"
        ids = await written(isettings, first, stream)
        assert len(ids) == len(set(ids)) and set(ids) == set(oracle.ids(path)), stream

    now = datetime.now(UTC)
    late: dict[str, set[str]] = {}
    for stream, (kind, column, _) in STREAMS.items():
        ops = [{"op": "append", "kind": kind, "record": {column: stamp(now - timedelta(hours=1))}},
               {"op": "append", "kind": kind, "record": {column: stamp(now - timedelta(minutes=20))}}]
        late[stream] = {r["id"] for r in istack.admin.graph("POST", "/tenant", {"ops": ops})["results"]}

    second = await sync(isettings, istack, list(STREAMS))
    for stream in STREAMS:
        assert second[stream][0]["kind"] == "changes"
        ids = await written(isettings, second, stream)
        assert sorted(ids) == sorted(late[stream]), stream

    third = await sync(isettings, istack, list(STREAMS))
    for stream in STREAMS:
        assert await written(isettings, third, stream) == [], stream
