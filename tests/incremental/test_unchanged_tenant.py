"""The second run of an unchanged 1,000-user demo tenant makes at most one Graph request per partition, every
incremental stream included (a mailbox's folders: one `$batch` with the hierarchy check and every folder's
deltaLink). The per-stream request counts, from the engine and from the emulator's own counters, are printed with
the test output (`pytest -s`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from shared.config import Settings
from shared.contracts import PartitionResult
from shared.delta import PLANS
from shared.runtime import close_engines
from tests.conftest import RunningStack
from tests.incremental.conftest import exported, lake_settings, stack_fixture, sync

STREAMS = list(PLANS)
"""Every incremental stream: delta, mailbox folders, group members and log windows."""
NESTED = 50
"""Mailboxes with child and grandchild folders (the demo tenant's other sizes are its defaults)."""


@pytest.fixture(scope="module")
def big_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    yield from stack_fixture(tmp_path_factory, "--users", "1000", "--throttle", "off", "--seed", "5",
                             "--mailboxes-with-child-folders", str(NESTED))


@pytest.fixture()
async def big_settings(big_stack: RunningStack) -> AsyncIterator[Settings]:
    for _ in exported(big_stack):
        yield lake_settings(big_stack)
        await close_engines()


def round_trips(counters: dict[str, Any]) -> int:
    """HTTP requests the emulator answered: a `$batch` envelope is one, the items inside it are not."""
    return int(counters["requests"]) - int(counters["batch_items"])


@pytest.mark.timeout(1500)
async def test_unchanged_tenant_costs_one_request_per_partition(big_stack: RunningStack,
                                                                big_settings: Settings) -> None:
    first = await sync(big_settings, big_stack, STREAMS)
    for stream, parts in first.items():
        failed = {(p.get("error_code"), p.get("error_message")) for p in parts if p["status"] == "failed"}
        assert not failed, (stream, failed)
    emulator: dict[str, dict[str, Any]] = {}
    second: dict[str, list[PartitionResult]] = {}
    for stream in STREAMS:  # one stream at a time, so the emulator's counters tell the streams apart
        big_stack.admin.graph("POST", "/counters/reset", {})
        second.update(await sync(big_settings, big_stack, [stream]))
        emulator[stream] = big_stack.admin.graph("GET", "/counters")

    print("\nsecond run of an unchanged 1,000-user tenant (emulator: round trips incl. the parent listing)")
    print(f"{'stream':<22}{'partitions':>11}{'requests':>10}{'max/part':>10}{'emulator':>10}{'listing':>9}"
          f"{'batches':>9}{'items':>7}{'records':>9}")
    for stream in STREAMS:
        parts = second[stream]
        assert not [p for p in parts if p["status"] == "failed"], stream
        ok = [p for p in parts if p["status"] == "ok"]
        assert ok and all(p["kind"] == "changes" and p["records"] == 0 for p in ok), stream
        requests = sum(p["requests"] for p in parts)
        most = max(p["requests"] for p in parts)
        seen = emulator[stream]
        listing = round_trips(seen) - requests  # the parent listing (users, groups, drives) is not a partition
        print(f"{stream:<22}{len(parts):>11}{requests:>10}{most:>10}{round_trips(seen):>10}{listing:>9}"
              f"{seen['batches']:>9}{seen['batch_items']:>7}{sum(p['records'] for p in ok):>9}")
        assert most <= 1, stream
        # A listing of 1,000 parents takes a few pages; drives are listed per user (`/users/{id}/drives`).
        assert 0 <= listing <= (1003 if stream == "drive_items" else 3), (stream, listing)
        assert seen["throttled"] == 0 and set(seen["by_status"]) <= {"200", "404", "403"}, (stream, seen)
    mail = Counter(emulator["mail_messages"]["by_endpoint"])
    skipped = len([p for p in second["mail_messages"] if p["status"] == "skipped"])
    mailboxes = len(second["mail_messages"]) - skipped
    # every readable mailbox: one batch holding its hierarchy check and every folder (nested ones included)
    assert emulator["mail_messages"]["batches"] == mailboxes
    assert mail["mail_folders_delta"] >= mailboxes and mail["folder_messages_delta"] >= 9 * mailboxes
    print("emulator endpoints, mail_messages:", dict(sorted(mail.items())))
    print("emulator endpoints, contacts:", dict(sorted(emulator["contacts"]["by_endpoint"].items())))
