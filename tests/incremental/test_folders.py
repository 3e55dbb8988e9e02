"""Mailbox partitions through the folder hierarchy: nested folders (a child of a child) are read, a folder added
between runs is picked up by the hierarchy check and read from its first page, a renamed or moved folder keeps its
cursor, and a removed folder resyncs only that mailbox. An unchanged mailbox costs one `$batch`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.config import Settings
from shared.contracts import PartitionResult
from tests.conftest import RunningStack
from tests.engine.oracle import Oracle
from tests.incremental.conftest import Consumer, records_of, sync


def q(value: str) -> str:
    return quote(value, safe="")


def ops(stack: RunningStack, *items: dict[str, Any]) -> list[Any]:
    return list(stack.admin.graph("POST", "/tenant", {"ops": list(items)})["results"])


def mailbox_with_grandchild(oracle: Oracle) -> tuple[str, dict[str, dict[str, Any]]]:
    """A user whose mailbox has a folder two levels below the top (folders by display name)."""
    for user in oracle.ids("/users"):
        if oracle.status(f"/users/{q(user)}/mailFolders") != 200:
            continue
        folders = {f["displayName"]: f for f in oracle.items(f"/users/{q(user)}/mailFolders/delta")}
        if grandchild_of(folders) is not None:
            return user, folders
    raise AssertionError("the test tenant has no mailbox with nested folders")


async def mail_of(settings: Settings, stack: RunningStack, user: str
                  ) -> tuple[PartitionResult, dict[str, str], dict[str, list[PartitionResult]]]:
    results = await sync(settings, stack, ["mail_messages"])
    assert not [p for p in results["mail_messages"] if p["status"] == "failed"]
    part = next(p for p in results["mail_messages"] if p["parent_id"] == user)
    rows = (await records_of(settings, {"mail_messages": [part]}))["mail_messages"]
    return part, {r["id"]: r["_change"] for r in rows}, results


async def test_nested_folders_added_moved_and_removed_between_runs(istack: RunningStack, isettings: Settings) -> None:
    oracle = Oracle(istack)
    user, folders = mailbox_with_grandchild(oracle)
    consumer = Consumer()

    def mailbox() -> set[str]:
        return set(oracle.ids(f"/users/{q(user)}/messages"))

    first, rows, results = await mail_of(isettings, istack, user)
    await consumer.apply(isettings, results)
    grandchild = grandchild_of(folders)
    assert grandchild is not None
    deep = set(oracle.ids(f"/users/{q(user)}/mailFolders/{q(grandchild['id'])}/messages"))
    assert deep and deep <= set(rows)  # a grandchild folder's messages are copied (once missed)
    assert first["kind"] == "snapshot" and set(rows) == mailbox() and set(rows.values()) == {"upsert"}
    # a first read: the hierarchy, one batch with every folder's first page (no folder here has a second page)
    assert first["requests"] == 2, (first["pages"], first["requests"], first["records"])

    unchanged, rows, results = await mail_of(isettings, istack, user)
    assert unchanged["kind"] == "changes" and rows == {} and unchanged["requests"] == 1

    # A folder created under the grandchild (three levels deep) with a message in it, and a folder renamed and moved.
    added, = ops(istack, {"op": "create", "kind": "mailFolders", "parents": [user],
                          "record": {"displayName": "Avenants", "parentFolderId": grandchild["id"]}})
    message, = ops(istack, {"op": "create", "kind": "folderMessages", "parents": [user, added["id"]],
                            "record": {"subject": "deep inside"}})
    top = folders["Archive"]
    ops(istack, {"op": "update", "kind": "mailFolders", "parents": [user], "id": grandchild["id"],
                 "patch": {"displayName": "Contrats (old)", "parentFolderId": top["id"]}})
    changed, rows, results = await mail_of(isettings, istack, user)
    await consumer.apply(isettings, results)
    assert changed["kind"] == "changes" and "resynced" not in changed
    assert rows == {message["id"]: "upsert"}
    assert changed["requests"] == 2  # the batch, then the new folder's first page

    # Removing a folder (its messages and child folders go with it) resyncs this mailbox alone.
    doomed = set(oracle.ids(f"/users/{q(user)}/mailFolders/{q(added['id'])}/messages"))
    assert doomed == {message["id"]}
    ops(istack, {"op": "delete", "kind": "mailFolders", "parents": [user], "id": added["id"]})
    removed, rows, results = await mail_of(isettings, istack, user)
    await consumer.apply(isettings, results)
    assert removed["kind"] == "snapshot" and removed.get("resynced") == "FolderRemoved"
    assert set(rows) == mailbox() and message["id"] not in rows
    others = [p for p in results["mail_messages"] if p["parent_id"] != user and p["status"] == "ok"]
    assert others and all(p["kind"] == "changes" and "resynced" not in p for p in others)
    assert {i for (u, i) in consumer.ids("mail_messages") if u == user} == mailbox()


def grandchild_of(folders: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """A folder whose parent is a folder that has a parent folder itself."""
    by_id = {f["id"]: f for f in folders.values()}
    for folder in folders.values():
        parent = by_id.get(folder.get("parentFolderId", ""))
        if parent is not None and parent.get("parentFolderId") in by_id:
            return folder
    return None
