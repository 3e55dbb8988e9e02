"""A long log window is read in one-day slices: a slice that fails keeps the slices before it (written, and the
watermark advanced past them), and the next run continues from there without repeating or losing a record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.runtime import close_engines, get_engine
from shared.state import CheckpointStore
from shared.windows import parse_time
from tests.conftest import RunningStack
from tests.engine.oracle import Oracle
from tests.engine.runner import read_records
from tests.incremental.conftest import lake_settings, sync

STREAM = "audit_logs_directory"


async def test_a_failed_slice_keeps_the_slices_before_it(istack: RunningStack, iworkload: None) -> None:
    oracle = Oracle(istack)
    stamps = {r["id"]: parse_time(r["activityDateTime"]) for r in oracle.items("/auditLogs/directoryAudits")}
    start = min(stamps.values()).replace(hour=0, minute=0, second=0, microsecond=0)
    days = (datetime.now(UTC) - start).days
    assert days >= 5, "the demo audit log should span several days"
    settings = lake_settings(istack, GRAPH_MAX_ATTEMPTS="1", SYNC_START_TIME=start.isoformat())
    store_run: list[str] = []
    try:
        istack.admin.graph("PATCH", "/settings", {"faults": {"error_rate": 0.25, "seed": 3,
                                                             "path_prefix": "/auditLogs/directoryAudits"}})
        try:
            first = await sync(settings, istack, [STREAM])
        finally:
            istack.admin.graph("PATCH", "/settings", {"faults": {"error_rate": 0.0, "path_prefix": ""}})
        (part,) = first[STREAM]
        engine = await get_engine(settings)
        checkpoint, _ = await CheckpointStore(engine, settings.output_prefix, istack.env.tenant_id).load(STREAM, None)
        assert checkpoint is not None and part["blob_path"]
        first_ids = [r["id"] for r in await read_records(settings, part["blob_path"])]
        if part["status"] == "failed":
            assert part["retryable"]
            watermark = parse_time(checkpoint.watermark) if checkpoint.watermark else start
            assert watermark < datetime.now(UTC) - timedelta(hours=1)
            store_run.append(part["error_code"] or "")
        else:
            watermark = parse_time(checkpoint.watermark or "")
        assert sorted(first_ids) == sorted(i for i, t in stamps.items() if t < watermark)

        second = await sync(settings, istack, [STREAM])
        (again,) = second[STREAM]
        assert again["status"] == "ok" and again["kind"] == "changes"
        second_ids = [r["id"] for r in await read_records(settings, again["blob_path"] or "")]
        assert sorted(first_ids + second_ids) == sorted(stamps)  # every record once
    finally:
        await close_engines()
    assert store_run, f"with 25% of requests failing, one of {days} slices should have failed"
