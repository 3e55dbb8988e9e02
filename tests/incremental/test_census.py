"""The run's checkpoint census on the real stack (Azurite, Graph emulator): a first sync asks Blob once per stream
instead of once per partition, the next run reads every checkpoint as before, and a checkpoint that appears
behind the census's back is caught by the conditional save without losing the data already written."""

from __future__ import annotations

import orjson
import pytest

from shared.config import Settings
from shared.contracts import PartitionResult
from shared.runtime import get_engine
from shared.state import checkpoint_path
from shared.sync import census, sync_partition, write_manifest
from shared.writer.paths import partition_path
from tests.conftest import RunningStack
from tests.engine.runner import read_records, run_streams
from tests.incremental.conftest import new_run
from tests.incremental.storage_calls import StorageCalls, count_storage

STREAMS = ["users", "mail_messages", "conditional_access_policies"]  # the last one keeps no checkpoint
INCREMENTAL = ["users", "mail_messages"]


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> StorageCalls:
    return count_storage(monkeypatch)


def flat(results: dict[str, list[PartitionResult]], streams: list[str]) -> list[PartitionResult]:
    return [p for name in streams for p in results[name]]


async def checkpoint_doc(settings: Settings, tenant_id: str, stream: str, parent_id: str | None) -> dict[str, object]:
    engine = await get_engine(settings)
    blob = engine.blob(checkpoint_path(settings.output_prefix, tenant_id, stream, parent_id))
    doc: dict[str, object] = orjson.loads(await (await blob.download_blob()).readall())
    return doc


async def test_first_sync_reads_no_checkpoint_and_the_next_run_reads_each(istack: RunningStack,
                                                                        isettings: Settings,
                                                                        calls: StorageCalls) -> None:
    first = new_run(istack)
    fresh = await census(isettings, first, STREAMS)
    assert fresh == INCREMENTAL
    assert len(calls.listings()) == len(INCREMENTAL)  # one listing per incremental stream, none per partition
    assert sorted(c.prefix.rsplit("/", 2)[1] for c in calls.listings()) == sorted(INCREMENTAL)
    results = await run_streams(isettings, first, STREAMS, concurrency=8, fresh=fresh)
    await write_manifest(isettings, first, flat(results, STREAMS))
    partitions = flat(results, INCREMENTAL)
    saved = [p for p in partitions if p["status"] == "ok"]
    assert len(partitions) > 10 and len(saved) > 5
    assert {p["kind"] for p in saved} == {"snapshot"}
    assert calls.checkpoint("GET") == []
    assert len(calls.checkpoint("PUT")) == len(saved)

    calls.clear()
    second = new_run(istack)
    assert await census(isettings, second, STREAMS) == []
    again = await run_streams(isettings, second, STREAMS, concurrency=8, fresh=[])
    assert len(calls.checkpoint("GET")) == len(flat(again, INCREMENTAL))  # each partition reads its own
    assert {p["kind"] for p in flat(again, INCREMENTAL) if p["status"] == "ok"} == {"changes"}


async def test_a_checkpoint_created_after_the_census_fails_the_save_and_keeps_the_data(istack: RunningStack,
                                                                                      isettings: Settings) -> None:
    first = new_run(istack)
    assert "mail_messages" in await census(isettings, first, ["mail_messages"])
    listing = await run_streams(isettings, new_run(istack), ["users"], fresh=["users"])
    owner = next(p for p in listing["users"] if p["status"] == "ok")
    users = [r["id"] for r in await read_records(isettings, owner["blob_path"] or "")]
    # A concurrent run copies one mailbox first and creates its checkpoint.
    for user in users:
        rival = new_run(istack)
        won = await sync_partition(isettings, rival, "mail_messages", user)
        if won["status"] == "ok" and won["records"]:
            break
    else:
        raise AssertionError("no user with messages in the stack's tenant")
    before = await checkpoint_doc(isettings, istack.env.tenant_id, "mail_messages", user)
    assert before["run_id"] == rival["run_id"]

    lost = await sync_partition(isettings, first, "mail_messages", user, fresh=True)
    assert (lost["status"], lost.get("error_code"), lost.get("retryable")) == ("failed", "CheckpointConflict", True)
    assert await checkpoint_doc(isettings, istack.env.tenant_id, "mail_messages", user) == before
    kept = await read_records(isettings, partition_path(isettings.output_prefix, first, "mail_messages", user,
                                                        isettings.output_format))
    assert len(kept) == won["records"]  # the run's data blob is committed and stays

    # The re-run pass carries no census flag: it reads the rival's checkpoint and continues from it.
    rerun = await sync_partition(isettings, first, "mail_messages", user)
    assert (rerun["status"], rerun["kind"]) == ("ok", "changes")


async def test_a_retried_fresh_partition_replaces_its_own_first_save(istack: RunningStack,
                                                                    isettings: Settings) -> None:
    """A durable retry after the save runs with the same input (`fresh` too): the checkpoint it meets is this
    run's own snapshot, so the retry's snapshot replaces it instead of failing the partition."""
    run = new_run(istack)
    once = await sync_partition(isettings, run, "users", None, fresh=True)
    twice = await sync_partition(isettings, run, "users", None, fresh=True)
    assert (once["status"], once["kind"]) == (twice["status"], twice["kind"]) == ("ok", "snapshot")
    assert twice["records"] == once["records"] > 0
    doc = await checkpoint_doc(isettings, istack.env.tenant_id, "users", None)
    assert doc["run_id"] == run["run_id"] and doc["prior"] is None
    following = await sync_partition(isettings, new_run(istack), "users", None)
    assert (following["status"], following["kind"], following["records"]) == ("ok", "changes", 0)


async def test_a_full_resync_over_existing_checkpoints_is_not_fresh_and_advances_them(istack: RunningStack,
                                                                                      isettings: Settings,
                                                                                      calls: StorageCalls) -> None:
    """`full` ignores the stored cursors but must still replace the checkpoints conditionally, so the census
    leaves a stream that has any to read them."""
    await run_streams(isettings, new_run(istack), ["users"], fresh=["users"])
    forced = new_run(istack, full=True)
    assert await census(isettings, forced, ["users"]) == []
    calls.clear()
    [result] = (await run_streams(isettings, forced, ["users"], fresh=[]))["users"]
    assert (result["status"], result["kind"]) == ("ok", "snapshot")
    assert len(calls.checkpoint("GET")) == len(calls.checkpoint("PUT")) == 1
    doc = await checkpoint_doc(isettings, istack.env.tenant_id, "users", None)
    assert doc["run_id"] == forced["run_id"]
