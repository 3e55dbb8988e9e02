"""The Outlook folder hierarchy over HTTPS: `mailFolders/delta` (the whole tree, flat), the top-level list,
`childFolders`, nested folders' messages, folder mutations between delta rounds, `contactFolders/delta`, and the
`$filter=id eq ...` scope of directory delta rounds."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.devstack.test_graph_delta import apply, latest, round_from
from tests.devstack.test_graph_support import TEST_SIZES, GraphHarness, running_harness

pytestmark = pytest.mark.timeout(240)

SIZES = dataclasses.replace(TEST_SIZES, mailboxes_with_child_folders=80)


@pytest.fixture(scope="module")
async def graph(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphHarness]:
    root = Path(tmp_path_factory.mktemp("graph-folders"))
    async with running_harness(root, throttled=False, sizes=SIZES) as harness:
        yield harness


def q(value: str) -> str:
    return quote(value, safe="")


_USED: set[str] = set()


def nested_user(graph: GraphHarness) -> str:
    """A mailbox with child folders that no other test of this module changed yet (tests mutate their own)."""
    lay = graph.tenant.layout  # type: ignore[attr-defined]
    for u in range(SIZES.users):
        user = lay.user_id(u)
        if lay.has_child_folders(u) and lay.mailbox_state(u) == "ok" and lay.messages_in(u) >= 14 \
                and user not in _USED:
            _USED.add(user)
            return str(user)
    raise AssertionError("the test tenant has too few mailboxes with child folders")


def by_name(folders: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["displayName"]: f for f in folders}


# --- mailFolders/delta, the list and childFolders --------------------------------------------------------------------
async def test_delta_returns_the_whole_hierarchy_flat(graph: GraphHarness) -> None:
    user = nested_user(graph)
    items, pages = await graph.walk(f"/users/{user}/mailFolders/delta", headers={"Prefer": "odata.maxpagesize=4"})
    assert [f["id"] for f in items] == graph.ids("mailFolders", user)
    assert [len(p["value"]) for p in pages] == [4, 4, 4]
    assert all("$skiptoken=" in p["@odata.nextLink"] for p in pages[:-1])
    assert "$deltatoken=" in pages[-1]["@odata.deltaLink"]
    assert pages[0]["@odata.context"].endswith("$metadata#Collection(mailFolder)")
    folders = by_name(items)
    inbox, archive = folders["Inbox"], folders["Archive"]
    child, grandchild = folders["Clients"], folders["Contrats 2025"]
    root = inbox["parentFolderId"]
    assert root not in {f["id"] for f in items}  # the mailbox root itself is not a listed folder
    assert child["parentFolderId"] == inbox["id"] and grandchild["parentFolderId"] == child["id"]
    assert folders["Newsletters"]["parentFolderId"] == archive["id"]
    assert (inbox["childFolderCount"], child["childFolderCount"], grandchild["childFolderCount"]) == (1, 1, 0)
    for folder in items:  # the counts are the folder's real content
        messages = graph.ids("folderMessages", user, folder["id"])
        assert folder["totalItemCount"] == len(messages)
    assert child["totalItemCount"] > 0 and grandchild["totalItemCount"] > 0
    # The plain list is the top level only; childFolders goes one level down.
    top, _ = await graph.walk(f"/users/{user}/mailFolders")
    assert {f["parentFolderId"] for f in top} == {root} and len(top) == 9
    kids, _ = await graph.walk(f"/users/{user}/mailFolders/inbox/childFolders")
    assert [f["id"] for f in kids] == [child["id"]]
    grandkids, _ = await graph.walk(f"/users/{user}/mailFolders/{q(child['id'])}/childFolders")
    assert [f["id"] for f in grandkids] == [grandchild["id"]]
    assert (await graph.walk(f"/users/{user}/mailFolders/{q(grandchild['id'])}/childFolders"))[0] == []
    from_root, _ = await graph.walk(f"/users/{user}/mailFolders/msgfolderroot/childFolders")
    assert [f["id"] for f in from_root] == [f["id"] for f in top]
    one = await graph.get(f"/users/{user}/mailFolders('{grandchild['id']}')")
    assert one.status == 200 and one.json["displayName"] == "Contrats 2025"
    missing = await graph.get(f"/users/{user}/mailFolders/{q(root + 'x')}/childFolders")
    assert missing.status == 404 and missing.json["error"]["code"] == "ErrorItemNotFound"


async def test_child_folders_page_with_skip(graph: GraphHarness) -> None:
    user = nested_user(graph)
    inbox = by_name(graph.records("mailFolders", user))["Inbox"]
    await apply(graph, *({"op": "create", "kind": "mailFolders", "parents": [user],
                          "record": {"displayName": f"Sub {i}", "parentFolderId": inbox["id"]}} for i in range(3)))
    items, pages = await graph.walk(f"/users/{user}/mailFolders/inbox/childFolders?$top=2")
    assert [f["displayName"] for f in items] == ["Clients", "Sub 0", "Sub 1", "Sub 2"]
    assert [len(p["value"]) for p in pages] == [2, 2]
    assert "%24skip=2" in pages[0]["@odata.nextLink"] or "$skip=2" in pages[0]["@odata.nextLink"]
    assert by_name((await graph.walk(f"/users/{user}/mailFolders"))[0])["Inbox"]["childFolderCount"] == 4


async def test_messages_delta_on_a_grandchild_folder(graph: GraphHarness) -> None:
    user = nested_user(graph)
    grandchild = by_name(graph.records("mailFolders", user))["Contrats 2025"]
    url = f"/users/{user}/mailFolders/{q(grandchild['id'])}/messages/delta"
    items, link = await round_from(graph, url)
    assert [m["id"] for m in items] == graph.ids("folderMessages", user, grandchild["id"]) and items
    assert {m["parentFolderId"] for m in items} == {grandchild["id"]}
    every, _ = await graph.walk(f"/users/{user}/messages?$top=1000&$select=parentFolderId")
    assert {m["id"] for m in items} <= {m["id"] for m in every}  # /messages is the whole mailbox
    created, = await apply(graph, {"op": "create", "kind": "folderMessages", "parents": [user, grandchild["id"]],
                                   "record": {"subject": "nested"}})
    changes, _ = await round_from(graph, link)
    assert [(c["id"], c["subject"]) for c in changes] == [(created["id"], "nested")]


async def test_select_on_folder_delta(graph: GraphHarness) -> None:
    user = nested_user(graph)
    items, _ = await round_from(graph, f"/users/{user}/mailFolders/delta?$select=displayName,parentFolderId")
    assert items and all(set(f) == {"id", "displayName", "parentFolderId"} for f in items)


async def test_change_rounds_add_rename_move_and_delete_folders(graph: GraphHarness) -> None:
    user = nested_user(graph)
    _, link = await round_from(graph, f"/users/{user}/mailFolders/delta?$select=displayName,parentFolderId")
    folders = by_name(graph.records("mailFolders", user))
    child, grandchild, news = folders["Clients"], folders["Contrats 2025"], folders["Newsletters"]
    doomed = set(graph.ids("folderMessages", user, child["id"]))  # the grandchild moves away first
    kept = graph.ids("folderMessages", user, grandchild["id"])
    before = set(graph.ids("messages", user))
    assert doomed and kept and doomed <= before
    added, renamed, moved, _ = await apply(
        graph,
        {"op": "create", "kind": "mailFolders", "parents": [user], "record": {"displayName": "Factures"}},
        {"op": "update", "kind": "mailFolders", "parents": [user], "id": news["id"],
         "patch": {"displayName": "Lettres"}},
        {"op": "update", "kind": "mailFolders", "parents": [user], "id": grandchild["id"],
         "patch": {"parentFolderId": folders["Projets 2026 — Équipe"]["id"]}},
        {"op": "delete", "kind": "mailFolders", "parents": [user], "id": child["id"]},
    )
    assert added["parentFolderId"] == folders["Inbox"]["parentFolderId"] and added["totalItemCount"] == 0
    assert renamed["displayName"] == "Lettres" and moved["parentFolderId"] == folders["Projets 2026 — Équipe"]["id"]
    changes, next_link = await round_from(graph, link)
    assert {c["id"]: c for c in changes} == {
        added["id"]: {"id": added["id"], "displayName": "Factures", "parentFolderId": added["parentFolderId"]},
        news["id"]: {"id": news["id"], "displayName": "Lettres", "parentFolderId": news["parentFolderId"]},
        child["id"]: {"@odata.type": "#microsoft.graph.mailFolder", "id": child["id"],
                      "@removed": {"reason": "deleted"}},
        grandchild["id"]: {"id": grandchild["id"], "displayName": "Contrats 2025",
                           "parentFolderId": folders["Projets 2026 — Équipe"]["id"]},
    }
    assert (await round_from(graph, next_link))[0] == []
    # The moved grandchild kept its messages; the deleted folder's messages are gone from the mailbox.
    assert before - set(graph.ids("messages", user)) == doomed
    assert graph.ids("folderMessages", user, grandchild["id"]) == kept
    gone = await graph.get(f"/users/{user}/mailFolders/{q(child['id'])}/messages/delta")
    assert gone.status == 404 and gone.json["error"]["code"] == "ErrorItemNotFound"
    inbox = by_name((await graph.walk(f"/users/{user}/mailFolders"))[0])["Inbox"]
    assert inbox["childFolderCount"] == 0


async def test_deleting_a_folder_deletes_its_subtree(graph: GraphHarness) -> None:
    user = nested_user(graph)
    folders = by_name(graph.records("mailFolders", user))
    child, grandchild = folders["Clients"], folders["Contrats 2025"]
    doomed = set(graph.ids("folderMessages", user, child["id"]) + graph.ids("folderMessages", user, grandchild["id"]))
    folder_link = await latest_outlook(graph, f"/users/{user}/mailFolders/delta")
    _, inner_link = await round_from(graph, f"/users/{user}/mailFolders/{q(grandchild['id'])}/messages/delta")
    before = set(graph.ids("messages", user))
    await apply(graph, {"op": "delete", "kind": "mailFolders", "parents": [user], "id": child["id"]})
    changes, _ = await round_from(graph, folder_link)
    assert sorted(c["id"] for c in changes) == sorted([child["id"], grandchild["id"]])
    assert all(c["@removed"] == {"reason": "deleted"} for c in changes)
    assert before - set(graph.ids("messages", user)) == doomed
    every, _ = await graph.walk(f"/users/{user}/messages?$top=1000&$select=parentFolderId")
    assert not doomed & {m["id"] for m in every}
    assert (await graph.get(inner_link)).status == 404  # the folder itself is gone
    refused = await graph.admin("POST", "/tenant", {"op": "update", "kind": "mailFolders", "parents": [user],
                                                    "id": folders["Inbox"]["id"],
                                                    "patch": {"parentFolderId": folders["Inbox"]["id"]}}, expect=400)
    assert "itself" in refused["error"]


async def latest_outlook(graph: GraphHarness, url: str) -> str:
    """Outlook has no `$deltatoken=latest`: a full round gives the link."""
    return (await round_from(graph, url))[1]


async def test_folder_tokens_expire_and_survive_restarts(graph: GraphHarness) -> None:
    user = nested_user(graph)
    url = f"/users/{user}/mailFolders/delta"
    _, link = await round_from(graph, url + "?$select=displayName")
    folder = by_name(graph.records("mailFolders", user))["Drafts"]
    await apply(graph, {"op": "update", "kind": "mailFolders", "parents": [user], "id": folder["id"],
                        "patch": {"displayName": "Brouillons"}})
    await graph.restart()
    await graph.admin("PATCH", "/settings", {"throttle": {"enabled": False}})
    changes, link = await round_from(graph, link)
    assert changes == [{"id": folder["id"], "displayName": "Brouillons"}]
    await graph.admin("POST", "/delta/expire", {"kind": "mailFolders", "parent_ids": [user]})
    gone = await graph.get(link)
    assert gone.status == 410 and gone.json["error"]["code"] == "syncStateNotFound"
    location = gone.headers["Location"]
    assert location.startswith(f"{graph.base}/v1.0/users/{user}/mailFolders/delta?")
    assert "$select=displayName" in location
    fresh, _ = await round_from(graph, location)
    assert [f["id"] for f in fresh] == graph.ids("mailFolders", user)


async def test_hidden_folders_need_include_hidden_folders(graph: GraphHarness) -> None:
    user = nested_user(graph)
    hidden, = await apply(graph, {"op": "create", "kind": "mailFolders", "parents": [user],
                                  "record": {"displayName": "Sync Issues", "isHidden": True}})
    plain = {f["id"] for f in (await graph.walk(f"/users/{user}/mailFolders"))[0]}
    shown = {f["id"] for f in (await graph.walk(f"/users/{user}/mailFolders?includeHiddenFolders=true"))[0]}
    assert hidden["id"] not in plain and shown - plain == {hidden["id"]}


# --- contactFolders/delta ------------------------------------------------------------------------------------------
async def test_contact_folders_delta_and_child_folders(graph: GraphHarness) -> None:
    user = nested_user(graph)
    listed, _ = await graph.walk(f"/users/{user}/contactFolders")
    items, link = await round_from(graph, f"/users/{user}/contactFolders/delta")
    assert [f["id"] for f in items] == [f["id"] for f in listed] and items
    default = items[0]["parentFolderId"]
    assert default not in {f["id"] for f in items}  # like the list: the default Contacts folder is not a row
    parent = items[0]["id"]
    nested, = await apply(graph, {"op": "create", "kind": "contactFolders", "parents": [user],
                                  "record": {"displayName": "Fournisseurs — Lyon", "parentFolderId": parent}})
    changes, link = await round_from(graph, link)
    assert [(c["id"], c["parentFolderId"]) for c in changes] == [(nested["id"], parent)]
    assert nested["id"] not in {f["id"] for f in (await graph.walk(f"/users/{user}/contactFolders"))[0]}
    kids, _ = await graph.walk(f"/users/{user}/contactFolders/{q(parent)}/childFolders")
    assert [f["id"] for f in kids] == [nested["id"]]
    await apply(graph, {"op": "delete", "kind": "contactFolders", "parents": [user], "id": parent})
    changes, _ = await round_from(graph, link)
    assert sorted(c["id"] for c in changes) == sorted([parent, nested["id"]])
    assert all(c["@removed"] == {"reason": "deleted"} for c in changes)


# --- $filter=id eq ... scopes every round of a directory delta --------------------------------------------------------
async def test_group_delta_id_filter_scopes_later_rounds(graph: GraphHarness) -> None:
    groups = graph.ids("groups")
    wanted, other = groups[2:4], groups[5]
    flt = quote(f"id eq '{wanted[0]}' or id eq '{wanted[1]}'")
    items, link = await round_from(graph, f"/groups/delta?$filter={flt}&$select=displayName,members")
    assert [g["id"] for g in items] == wanted
    assert all("members@delta" in g for g in items)
    users = graph.ids("users")
    outsider = next(u for u in users if u not in set(graph.ids("groupMembers", wanted[0])))
    stranger = next(u for u in users if u not in set(graph.ids("groupMembers", other)))
    await apply(
        graph,
        {"op": "add_member", "group_id": wanted[0], "member_id": outsider},
        {"op": "add_member", "group_id": other, "member_id": stranger},
        {"op": "update", "kind": "groups", "id": other, "patch": {"displayName": "Not tracked"}},
        {"op": "update", "kind": "groups", "id": wanted[1], "patch": {"displayName": "Tracked"}},
        {"op": "soft_delete", "kind": "groups", "id": groups[6]},
    )
    changes, link = await round_from(graph, link)
    assert sorted(c["id"] for c in changes) == sorted(wanted)
    by_id = {c["id"]: c for c in changes}
    assert by_id[wanted[0]]["members@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": outsider}]
    assert by_id[wanted[1]]["displayName"] == "Tracked"
    await apply(graph, {"op": "remove_member", "group_id": other, "member_id": stranger},
                {"op": "delete", "kind": "groups", "id": groups[7]})
    assert (await round_from(graph, link))[0] == []
    await apply(graph, {"op": "soft_delete", "kind": "groups", "id": wanted[1]})
    changes, _ = await round_from(graph, link)
    assert changes == [{"id": wanted[1], "@removed": {"reason": "changed"}}]


async def test_users_delta_id_filter_scopes_later_rounds(graph: GraphHarness) -> None:
    users = graph.ids("users")
    link = await latest(graph, "/users/delta?$filter=" + quote(f"id eq '{users[1]}'") + "&$select=jobTitle")
    await apply(graph, {"op": "update", "kind": "users", "id": users[1], "patch": {"jobTitle": "In scope"}},
                {"op": "update", "kind": "users", "id": users[2], "patch": {"jobTitle": "Out of scope"}},
                {"op": "delete", "kind": "users", "id": users[3]})
    changes, _ = await round_from(graph, link)
    assert changes == [{"id": users[1], "jobTitle": "In scope"}]


# --- $batch: links of earlier answers, given back relative to the version root -------------------------------------
def relative(graph: GraphHarness, link: str) -> str:
    prefix = f"{graph.base}/v1.0"
    assert link.startswith(prefix + "/")
    return link[len(prefix):]


async def batch_one(graph: GraphHarness, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": "1", "method": "GET", "url": url}
    if headers:
        item["headers"] = headers
    reply = await graph.request("POST", "/$batch", body={"requests": [item]})
    assert reply.status == 200, reply.raw[:300]
    response: dict[str, Any] = reply.json["responses"][0]
    return response


async def test_batch_follows_relative_next_and_delta_links(graph: GraphHarness) -> None:
    user = nested_user(graph)
    child = by_name(graph.records("mailFolders", user))["Clients"]
    url: str | None = f"/users/{user}/mailFolders/{q(child['id'])}/messages/delta"
    seen: list[str] = []
    delta_link = ""
    pages = 0
    while url:
        inner = await batch_one(graph, url, {"Prefer": "odata.maxpagesize=1"})
        assert inner["status"] == 200, inner
        pages += 1
        seen += [m["id"] for m in inner["body"]["value"]]
        next_link = inner["body"].get("@odata.nextLink")
        url = relative(graph, next_link) if next_link else None
        delta_link = inner["body"].get("@odata.deltaLink", delta_link)
    assert seen == graph.ids("folderMessages", user, child["id"]) and pages >= 2
    assert "$deltatoken=" in delta_link
    victim = seen[0]
    await apply(graph, {"op": "delete", "kind": "folderMessages", "parents": [user, child["id"]], "id": victim})
    inner = await batch_one(graph, relative(graph, delta_link))
    assert inner["status"] == 200 and inner["body"]["value"] == [
        {"@odata.type": "#microsoft.graph.message", "id": victim, "@removed": {"reason": "deleted"}}]
    # Directory skiptoken links and folder delta links work the same way.
    users = await batch_one(graph, "/users?$top=100&$select=id")
    more = await batch_one(graph, relative(graph, users["body"]["@odata.nextLink"]))
    assert more["status"] == 200 and [u["id"] for u in users["body"]["value"] + more["body"]["value"]] == \
        graph.ids("users")[:200]
    folders = await batch_one(graph, f"/users/{user}/mailFolders/delta", {"Prefer": "odata.maxpagesize=5"})
    rest = await batch_one(graph, relative(graph, folders["body"]["@odata.nextLink"]))
    assert rest["status"] == 200 and len(rest["body"]["value"]) == 5


async def test_batch_answers_expired_delta_links_with_410(graph: GraphHarness) -> None:
    user = nested_user(graph)
    _, link = await round_from(graph, f"/users/{user}/mailFolders/delta")
    await graph.admin("POST", "/delta/expire", {"kind": "mailFolders", "parent_ids": [user]})
    inner = await batch_one(graph, relative(graph, link))
    assert inner["status"] == 410 and inner["body"]["error"]["code"] == "syncStateNotFound"
    assert inner["headers"]["Location"].startswith(f"{graph.base}/v1.0/users/{user}/mailFolders/delta")


async def test_batch_limits_a_mailbox_to_four_items_however_it_is_named(graph: GraphHarness) -> None:
    user = nested_user(graph)
    other = nested_user(graph)
    upn = graph.records("users")[graph.ids("users").index(user)]["userPrincipalName"]
    folders = graph.ids("mailFolders", user)
    await graph.admin("POST", "/counters/reset")
    await graph.admin("PATCH", "/settings", {"faults": {"latency_ms": 120, "path_prefix": "/users/"}})
    try:
        requests = [{"id": f"a{i}", "method": "GET",
                     "url": f"/users/{user if i % 2 else upn}/mailFolders/{q(f)}/messages/delta"}
                    for i, f in enumerate(folders[:8])]
        requests += [{"id": f"b{i}", "method": "GET", "url": f"/users/{other}/mailFolders/delta"} for i in range(6)]
        reply = await graph.request("POST", "/$batch", body={"requests": requests})
    finally:
        await graph.admin("PATCH", "/settings", {"faults": {"latency_ms": 0, "path_prefix": ""}})
    assert reply.status == 200 and all(r["status"] == 200 for r in reply.json["responses"])
    counters = await graph.admin("GET", "/counters")
    assert counters["outlook_max_concurrent"] == {user.lower(): 4, other.lower(): 4}


async def test_id_filter_takes_many_ids(graph: GraphHarness) -> None:
    groups = graph.ids("groups")
    wanted = groups[:25]
    flt = quote(" or ".join(f"id eq '{g}'" for g in wanted))
    items, link = await round_from(graph, f"/groups/delta?$filter={flt}&$select=displayName")
    assert [g["id"] for g in items] == [g for g in groups if g in set(wanted)]
    await apply(graph, {"op": "update", "kind": "groups", "id": groups[-1], "patch": {"displayName": "Outside"}},
                {"op": "update", "kind": "groups", "id": wanted[-1], "patch": {"displayName": "Inside"}})
    changes, _ = await round_from(graph, link)
    assert changes == [{"id": wanted[-1], "displayName": "Inside"}]


# --- the tenant model (no server) ------------------------------------------------------------------------------------
def test_child_folders_take_part_of_a_mailbox_and_leave_the_rest_as_it_was() -> None:
    from devstack.tenant import build_tenant

    flat = build_tenant(5, dataclasses.replace(SIZES, users=60, mailboxes_with_child_folders=0))
    nested = build_tenant(5, dataclasses.replace(SIZES, users=60, mailboxes_with_child_folders=6))
    lay = nested.layout
    hierarchies = [u for u in range(60) if lay.has_child_folders(u)]
    assert len(hierarchies) == 6
    for u in range(60):
        user = lay.user_id(u)
        assert lay.messages_in(u) == flat.layout.messages_in(u)
        folders = nested.collection("mailFolders", user)
        messages = nested.collection("messages", user)
        assert folders is not None and messages is not None
        every = [m["id"] for m in messages.iter_from(0)]
        per_folder = [m["id"] for f in folders.iter_from(0)
                      for m in nested.collection("folderMessages", user, f["id"]).iter_from(0)]  # type: ignore[union-attr]
        assert sorted(per_folder) == sorted(every) and len(set(every)) == len(every)
        assert folders.count() == (12 if u in hierarchies else 9)
        if u not in hierarchies:  # untouched mailboxes are byte for byte the flat tenant's
            assert every == [m["id"] for m in flat.collection("messages", user).iter_from(0)]  # type: ignore[union-attr]


async def test_child_folder_navigation_paths(graph: GraphHarness) -> None:
    """`mailFolders/{a}/childFolders/{b}/...` as the SDKs build it, any depth; b must be a child of a."""
    user = nested_user(graph)
    folders = by_name(graph.records("mailFolders", user))
    child, grandchild = folders["Clients"], folders["Contrats 2025"]
    deep = f"/users/{user}/mailFolders/inbox/childFolders/{q(child['id'])}/childFolders/{q(grandchild['id'])}"
    one = await graph.get(deep)
    assert one.status == 200 and one.json["id"] == grandchild["id"]
    items, link = await round_from(graph, f"{deep}/messages/delta")
    assert [m["id"] for m in items] == graph.ids("folderMessages", user, grandchild["id"])
    assert "/childFolders/" in link  # links echo the path they answer
    assert (await round_from(graph, link))[0] == []
    kids, _ = await graph.walk(f"/users/{user}/mailFolders/inbox/childFolders/{q(child['id'])}/childFolders")
    assert [f["id"] for f in kids] == [grandchild["id"]]
    wrong = await graph.get(f"/users/{user}/mailFolders/archive/childFolders/{q(grandchild['id'])}/messages")
    assert wrong.status == 404 and wrong.json["error"]["code"] == "ErrorItemNotFound"
