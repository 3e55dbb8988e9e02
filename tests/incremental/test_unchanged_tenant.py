"""The second run of an unchanged 1,000-user tenant makes at most one Graph request per partition. The request
counts, from the engine and from the emulator's own counters, are printed with the test output.

The per-user Outlook streams are left out here to keep the run within a few minutes on 2 cores (1,000 mailboxes
times their folders); the 12-user stack tests check that an unchanged mailbox costs its folder listing plus one
request per folder."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.config import Settings
from shared.delta import plan_for
from shared.runtime import close_engines
from tests.conftest import RunningStack
from tests.incremental.conftest import exported, lake_settings, stack_fixture, sync

STREAMS = ["users", "groups", "group_member", "applications", "service_principals", "drive_items"]


@pytest.fixture(scope="module")
def big_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    yield from stack_fixture(tmp_path_factory, "--users", "1000", "--throttle", "off", "--seed", "5",
                                 "--drive-items-per-drive", "3")


@pytest.fixture()
async def big_settings(big_stack: RunningStack) -> AsyncIterator[Settings]:
    for _ in exported(big_stack):
        yield lake_settings(big_stack)
        await close_engines()


@pytest.mark.timeout(900)
async def test_unchanged_tenant_costs_one_request_per_partition(big_stack: RunningStack,
                                                                big_settings: Settings) -> None:
    first = await sync(big_settings, big_stack, STREAMS)
    for stream, parts in first.items():
        failed = {(p.get("error_code"), p.get("error_message")) for p in parts if p["status"] == "failed"}
        assert not failed, (stream, failed)
    big_stack.admin.graph("POST", "/counters/reset", {})
    second = await sync(big_settings, big_stack, STREAMS)
    counters = big_stack.admin.graph("GET", "/counters")

    print("\nsecond run of an unchanged 1,000-user tenant")
    print(f"{'stream':<20}{'partitions':>11}{'requests':>10}{'max/partition':>15}{'records':>9}")
    for stream, parts in second.items():
        ok = [p for p in parts if p["status"] == "ok"]
        assert not [p for p in parts if p["status"] == "failed"], stream
        assert all(p["kind"] == "changes" and p["records"] == 0 for p in ok), stream
        requests = sum(p["requests"] for p in parts)
        most = max((p["requests"] for p in parts), default=0)
        print(f"{stream:<20}{len(parts):>11}{requests:>10}{most:>15}{sum(p['records'] for p in ok):>9}")
        plan = plan_for(stream)
        assert plan is not None
        if plan.mode != "folders":
            assert most <= 1, stream
    by_endpoint = Counter(counters["by_endpoint"])
    print("emulator counters (second run, parent listings included):",
          dict(sorted(by_endpoint.items())), "total", counters["requests"])
    assert by_endpoint["users_delta"] == 1
    assert by_endpoint["applications_delta"] == 1 and by_endpoint["service_principals_delta"] == 1
    group_parts = len([p for p in second["group_member"] if p["status"] == "ok"])
    assert by_endpoint["groups_delta"] == 1 + group_parts
    drive_parts = len([p for p in second["drive_items"] if p["status"] == "ok"])
    assert by_endpoint["drive_delta"] == drive_parts
