"""Failures between runs: an expired delta token resyncs only its partition (and the manifest says so); a crash
after the data blob and before the checkpoint repeats the partition and loses nothing; `full` forces snapshots."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
import pytest
from azure.storage.blob import BlobServiceClient

from shared.config import Settings
from shared.contracts import PartitionResult
from shared.runtime import close_engines, get_engine
from shared.state import checkpoint_path
from shared.writer.paths import manifest_folder
from tests.conftest import RunningStack
from tests.engine.oracle import Oracle
from tests.engine.runner import read_records, run_streams
from tests.incremental.conftest import Consumer, lake_settings, sync, sync_run

STREAMS = ["users", "mail_messages"]


def q(value: str) -> str:
    return quote(value, safe="")


@pytest.fixture(scope="module")
def oracle(istack: RunningStack) -> Oracle:
    return Oracle(istack)


def mailbox(oracle: Oracle) -> tuple[str, str, list[str]]:
    """A user with an Inbox holding at least three messages: (user id, inbox id, message ids)."""
    for user in oracle.ids("/users"):
        folders = {f["displayName"]: f["id"] for f in oracle.items(f"/users/{q(user)}/mailFolders")}
        inbox = folders.get("Inbox")
        if inbox:
            messages = oracle.ids(f"/users/{q(user)}/mailFolders/{q(inbox)}/messages")
            if len(messages) >= 3:
                return user, inbox, messages
    raise AssertionError("the demo tenant has no mailbox with three Inbox messages")


def tenant_mail(oracle: Oracle) -> set[tuple[str | None, str]]:
    out: set[tuple[str | None, str]] = set()
    for user in oracle.ids("/users"):
        out |= {(user, i) for i in oracle.ids(f"/users/{q(user)}/messages")}
    return out


def ok_parts(results: dict[str, list[PartitionResult]], stream: str) -> list[PartitionResult]:
    return [p for p in results[stream] if p["status"] == "ok"]


async def test_expired_token_resyncs_only_that_partition(istack: RunningStack, isettings: Settings,
                                                         oracle: Oracle) -> None:
    owner, inbox, messages = mailbox(oracle)
    consumer = Consumer()
    await consumer.apply(isettings, await sync(isettings, istack, STREAMS))
    istack.admin.graph("POST", "/delta/expire", {"kind": "folderMessages", "parent_ids": [owner, inbox]})
    istack.admin.graph("POST", "/tenant", {"op": "delete", "kind": "folderMessages", "parents": [owner, inbox],
                                           "id": messages[0]})
    run, second = await sync_run(isettings, istack, STREAMS)

    resynced = [p for parts in second.values() for p in parts if p.get("resynced")]
    assert [(p["stream"], p["parent_id"], p["resynced"], p["kind"]) for p in resynced] == [
        ("mail_messages", owner, "syncStateNotFound", "snapshot")]
    others = [p for parts in second.values() for p in parts if p["status"] == "ok" and p not in resynced]
    assert others and all(p["kind"] == "changes" and p["records"] == 0 for p in others)
    # the resynced partition is a full snapshot of the mailbox, without the deleted message
    rows = await read_records(isettings, resynced[0]["blob_path"] or "")
    assert {r["id"] for r in rows} == set(oracle.ids(f"/users/{q(owner)}/messages"))
    assert messages[0] not in {r["id"] for r in rows}

    engine = await get_engine(isettings)
    manifest = orjson.loads(await (await engine.blob(
        f"{manifest_folder(isettings.output_prefix, run)}/_manifest.json").download_blob()).readall())
    assert manifest["summary"]["streams"]["mail_messages"]["resynced"] == 1
    assert manifest["summary"]["streams"]["users"]["changes"] == 1
    listed = [p for p in manifest["partitions"] if p.get("resynced")]
    assert len(listed) == 1 and listed[0]["parent_id"] == owner

    await consumer.apply(isettings, second)
    assert consumer.ids("mail_messages") == tenant_mail(oracle)


async def test_crash_between_data_and_checkpoint_repeats_the_partition(istack: RunningStack, isettings: Settings,
                                                                       oracle: Oracle) -> None:
    owner, inbox, messages = mailbox(oracle)
    consumer = Consumer()
    await consumer.apply(isettings, await sync(isettings, istack, STREAMS))
    created = istack.admin.graph("POST", "/tenant", {"op": "create", "kind": "folderMessages",
                                                     "parents": [owner, inbox],
                                                     "record": {"subject": "written once, committed twice"}})
    new_id = created["results"][0]["id"]

    # A lease on the checkpoint blob makes its conditional write fail: the data blob is committed, the checkpoint
    # is not (what a worker crash between the two leaves behind).
    service = BlobServiceClient.from_connection_string(istack.env.storage_connection_string,
                                                       connection_verify=istack.env.ca_bundle)
    path = checkpoint_path(isettings.output_prefix, istack.env.tenant_id, "mail_messages", owner)
    blob = service.get_blob_client(isettings.output_container, path)
    before = blob.download_blob().readall()
    lease = blob.acquire_lease(lease_duration=-1)
    try:
        crashed = await sync(isettings, istack, STREAMS)
    finally:
        lease.break_lease(lease_break_period=0)
    failed = [p for p in crashed["mail_messages"] if p["status"] == "failed"]
    assert [(p["parent_id"], p["error_code"], p["retryable"]) for p in failed] == [
        (owner, "CheckpointNotSaved", True)]
    assert blob.download_blob().readall() == before  # the checkpoint did not advance
    # The orphaned data blob holds the change; a consumer that reads it is not harmed by the repeat below.
    orphan_run = crashed["users"][0]["blob_path"] or ""
    orphan = orphan_run.replace("/users/", "/mail_messages/").rsplit("/", 1)[0]
    orphans = [b.name for b in service.get_container_client(isettings.output_container)
               .list_blobs(name_starts_with=orphan + "/")]
    orphan_rows: list[dict[str, Any]] = []
    for name in orphans:
        orphan_rows += await read_records(isettings, name)
    assert (new_id, "upsert") in {(r["id"], r["_change"]) for r in orphan_rows}
    await consumer.apply(isettings, crashed)
    for row in orphan_rows:  # applied by id, like any changes blob
        consumer.state["mail_messages"][(row["user_id"], row["id"])] = row

    istack.admin.graph("POST", "/tenant", {"op": "delete", "kind": "folderMessages", "parents": [owner, inbox],
                                           "id": messages[1]})
    again = await sync(isettings, istack, STREAMS)
    part = next(p for p in again["mail_messages"] if p["parent_id"] == owner)
    assert part["status"] == "ok" and part["kind"] == "changes"
    rows = await read_records(isettings, part["blob_path"] or "")
    assert {(r["id"], r["_change"]) for r in rows} == {(new_id, "upsert"), (messages[1], "deleted")}
    await consumer.apply(isettings, again)
    assert consumer.ids("mail_messages") == tenant_mail(oracle)
    service.close()


async def test_full_override_takes_snapshots(istack: RunningStack, isettings: Settings, oracle: Oracle) -> None:
    await sync(isettings, istack, STREAMS)
    forced = await sync(isettings, istack, STREAMS, full=True)
    assert all(p["kind"] == "snapshot" for p in ok_parts(forced, "users") + ok_parts(forced, "mail_messages"))
    assert forced["users"][0]["records"] == len(oracle.ids("/users"))
    after = await sync(isettings, istack, STREAMS)
    assert all(p["kind"] == "changes" and p["records"] == 0
               for p in ok_parts(after, "users") + ok_parts(after, "mail_messages"))
    # an unchanged partition costs one request (a mailbox: one $batch with the hierarchy check and every folder)
    assert after["users"][0]["requests"] == 1
    assert all(part["requests"] == 1 for part in ok_parts(after, "mail_messages"))


async def test_changed_select_starts_a_fresh_snapshot(istack: RunningStack, iworkload: None, oracle: Oracle) -> None:
    settings = lake_settings(istack)
    try:
        await sync(settings, istack, ["users"])
        narrowed = lake_settings(istack, SYNC_STREAMS_CONFIG='{"users": {"select": ["displayName"]}}')
        narrowed = narrowed.model_copy(update={"output_container": settings.output_container})
        result = await sync(narrowed, istack, ["users"])
        part = result["users"][0]
        assert part["kind"] == "snapshot" and part["records"] == len(oracle.ids("/users"))
        rows = await read_records(narrowed, part["blob_path"] or "")
        assert set(rows[0]) == {"id", "displayName", "tenant_id", "_extracted_at", "_change"}
    finally:
        await close_engines()


async def test_a_retried_partition_of_the_same_run_rewrites_the_same_changes(istack: RunningStack,
                                                                              isettings: Settings,
                                                                              oracle: Oracle) -> None:
    owner, inbox, messages = mailbox(oracle)
    await sync(isettings, istack, STREAMS)
    istack.admin.graph("POST", "/tenant", {"op": "update", "kind": "folderMessages", "parents": [owner, inbox],
                                           "id": messages[2], "patch": {"isRead": False, "subject": "retried"}})
    run, second = await sync_run(isettings, istack, STREAMS)
    part = next(p for p in second["mail_messages"] if p["parent_id"] == owner)
    written = await read_records(isettings, part["blob_path"] or "")
    assert [(r["id"], r["_change"]) for r in written] == [(messages[2], "upsert")]
    # The durable runtime re-executes an activity whose result it lost: same run, checkpoint already advanced.
    again = await run_streams(isettings, run, ["mail_messages"], concurrency=8)
    redo = next(p for p in again["mail_messages"] if p["parent_id"] == owner)
    assert redo["status"] == "ok" and redo["kind"] == "changes" and redo["blob_path"] == part["blob_path"]
    assert [(r["id"], r["_change"]) for r in await read_records(isettings, part["blob_path"] or "")] == [
        (messages[2], "upsert")]
    after = await sync(isettings, istack, ["mail_messages"])
    assert all(p["records"] == 0 for p in after["mail_messages"] if p["status"] == "ok")


@pytest.mark.parametrize(("stream", "code"), [("users", "resyncRequired"),
                                              ("drive_items", "resyncChangesApplyDifferences")])
async def test_directory_and_drive_resync_codes(istack: RunningStack, isettings: Settings, oracle: Oracle,
                                                stream: str, code: str) -> None:
    streams = ["users", "drive_items"]
    await sync(isettings, istack, streams)
    if stream == "users":
        istack.admin.graph("POST", "/delta/expire", {"kind": "users"})
        target = None
    else:
        target = next(d for u in oracle.ids("/users") for d in oracle.ids(f"/users/{q(u)}/drives"))
        istack.admin.graph("POST", "/delta/expire", {"kind": "driveItems", "parent_ids": [target]})
    second = await sync(isettings, istack, streams)
    resynced = [(p["stream"], p["parent_id"], p.get("resynced"), p["kind"])
                for parts in second.values() for p in parts if p.get("resynced")]
    assert resynced == [(stream, target, code, "snapshot")]
    part = next(p for p in second[stream] if p["parent_id"] == target)
    path = "/users" if stream == "users" else f"/drives/{q(target or '')}/root/delta"
    assert {r["id"] for r in await read_records(isettings, part["blob_path"] or "")} == set(oracle.ids(path))
