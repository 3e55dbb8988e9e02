"""The census through the real starter, orchestrators and activities (local Durable host, real Storage): the
plan activity lists each incremental stream's checkpoints once, the first run's partitions read none, and the
second run's partitions read every one (and write changes)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.incremental.storage_calls import StorageCalls, count_storage
from tests.incremental.test_orchestrated import BODY, app_env, kinds, run_once, start_sync

__all__ = ["app_env", "start_sync"]  # fixtures used below


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch, app_env: None) -> StorageCalls:
    return count_storage(monkeypatch)


def partitions(manifest: dict[str, Any]) -> int:
    return sum(1 for p in manifest["partitions"] if p["stream"] in BODY["streams"])


async def test_an_orchestrated_first_run_reads_no_checkpoint(calls: StorageCalls, start_sync: Any) -> None:
    first = await run_once(start_sync, BODY)
    assert first["summary"]["status"] == "succeeded" and kinds(first) == {"snapshot"}
    assert calls.checkpoint("GET") == []
    assert len(calls.checkpoint("PUT")) == sum(1 for p in first["partitions"] if p["status"] == "ok") > 10
    assert sorted(prefix.rsplit("/", 2)[1] for prefix in calls.census()) == sorted(BODY["streams"])

    calls.clear()
    second = await run_once(start_sync, BODY)
    assert kinds(second) == {"changes"}
    assert len(calls.checkpoint("GET")) == partitions(second)
    assert len(calls.census()) == len(BODY["streams"])  # asked again: the census never trusts an earlier run
