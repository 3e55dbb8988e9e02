"""The default Contacts folder is read although Graph's `/contactFolders` does not list it: with child folders
its id is their `parentFolderId`; without any, it comes from one of the default folder's contacts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.config import Settings
from tests.conftest import RunningStack
from tests.engine.oracle import Oracle
from tests.incremental.conftest import records_of, sync


def q(value: str) -> str:
    return quote(value, safe="")


def ops(stack: RunningStack, *items: dict[str, Any]) -> list[Any]:
    return list(stack.admin.graph("POST", "/tenant", {"ops": list(items)})["results"])


async def copied(settings: Settings, stack: RunningStack, user: str) -> dict[str, str]:
    """The contacts run's records of one user: id -> change."""
    results = await sync(settings, stack, ["contacts"])
    assert not [p for p in results["contacts"] if p["status"] == "failed"]
    rows = (await records_of(settings, results))["contacts"]
    return {r["id"]: r["_change"] for r in rows if r.get("user_id") == user}


async def test_default_folder_contacts_are_copied_with_and_without_child_folders(
        istack: RunningStack, isettings: Settings) -> None:
    oracle = Oracle(istack)
    user = next(u for u in oracle.ids("/users") if len(oracle.ids(f"/users/{q(u)}/contacts")) >= 2
                and oracle.ids(f"/users/{q(u)}/contactFolders"))
    default = oracle.ids(f"/users/{q(user)}/contacts")
    children = oracle.ids(f"/users/{q(user)}/contactFolders")
    in_children = {i for f in children for i in oracle.ids(f"/users/{q(user)}/contactFolders/{q(f)}/contacts")}
    assert in_children and not in_children & set(default)

    first = await copied(isettings, istack, user)
    assert set(first) == set(default) | in_children and set(first.values()) == {"upsert"}

    new = ops(istack, {"op": "create", "kind": "contacts", "parents": [user], "record": {"givenName": "Ada"}})[0]
    second = await copied(isettings, istack, user)
    assert second == {new["id"]: "upsert"}  # the default folder's cursor saw the new contact

    # No child folders left: the default folder is found from one of its contacts.
    ops(istack, *({"op": "delete", "kind": "contactFolders", "parents": [user], "id": f} for f in children))
    assert oracle.ids(f"/users/{q(user)}/contactFolders") == []
    third = await copied(isettings, istack, user)  # folders vanished: the partition is re-read as a whole
    assert set(third) == set(default) | {new["id"]} and set(third.values()) == {"upsert"}
