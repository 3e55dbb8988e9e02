"""Delta query over HTTPS: initial rounds, change rounds after admin mutations, `@removed`, `members@delta`,
the drive `deleted` facet, `latest` tokens, 410 Gone on expired tokens, and token survival across a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from devstack.graph import endpoints
from tests.devstack.test_graph_support import GraphHarness, running_harness

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
async def graph(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphHarness]:
    async with running_harness(Path(tmp_path_factory.mktemp("graph-delta")), throttled=False) as harness:
        yield harness


async def round_from(graph: GraphHarness, url: str, **kw: Any) -> tuple[list[dict[str, Any]], str]:
    """One delta round: every item, and the deltaLink that ends it."""
    items, pages = await graph.walk(url, **kw)
    for page in pages[:-1]:
        assert "$skiptoken=" in page["@odata.nextLink"] or "token=" in page["@odata.nextLink"]
        assert "@odata.deltaLink" not in page
    last = pages[-1]
    assert "@odata.nextLink" not in last
    return items, last["@odata.deltaLink"]


async def latest(graph: GraphHarness, url: str) -> str:
    sep = "&" if "?" in url else "?"
    reply = await graph.get(f"{url}{sep}$deltatoken=latest")
    assert reply.status == 200, reply.raw[:300]
    assert reply.json["value"] == [] and "@odata.nextLink" not in reply.json
    return str(reply.json["@odata.deltaLink"])


async def apply(graph: GraphHarness, *ops: dict[str, Any]) -> list[Any]:
    result = await graph.admin("POST", "/tenant", {"ops": list(ops)})
    return list(result["results"])


def mail_user(graph: GraphHarness) -> str:
    return next(u for u in graph.ids("users") if graph.tenant.mailbox_state(u) == "ok" and graph.tenant.has_onedrive(u))


# --- directory ---------------------------------------------------------------------------------------------------
async def test_users_initial_round_pages_then_delta_link(graph: GraphHarness) -> None:
    items, link = await round_from(graph, "/users/delta")
    assert [u["id"] for u in items] == graph.ids("users")
    assert all(set(u) == set(endpoints.USER_DEFAULT_SELECT) for u in items)
    parts = urlsplit(link)
    assert parts.path == "/v1.0/users/delta" and list(dict(parse_qsl(parts.query))) == ["$deltatoken"]
    again, _ = await round_from(graph, link)
    assert again == []  # nothing changed since


async def test_users_change_round_create_update_soft_delete_delete(graph: GraphHarness) -> None:
    link = await latest(graph, "/users/delta?$select=displayName,jobTitle")
    victims = graph.ids("users")[-3:]
    created, updated, _, _ = await apply(
        graph,
        {"op": "create", "kind": "users", "record": {"displayName": "Delta Created", "jobTitle": "Tester"}},
        {"op": "update", "kind": "users", "id": victims[0], "patch": {"jobTitle": "Promoted"}},
        {"op": "soft_delete", "kind": "users", "id": victims[1]},
        {"op": "delete", "kind": "users", "id": victims[2]},
    )
    assert updated["jobTitle"] == "Promoted"
    items, next_link = await round_from(graph, link)
    by_id = {i["id"]: i for i in items}
    assert by_id[created["id"]] == {"id": created["id"], "displayName": "Delta Created", "jobTitle": "Tester"}
    assert by_id[victims[0]]["jobTitle"] == "Promoted" and set(by_id[victims[0]]) == {"id", "displayName", "jobTitle"}
    assert by_id[victims[1]] == {"id": victims[1], "@removed": {"reason": "changed"}}
    assert by_id[victims[2]] == {"id": victims[2], "@removed": {"reason": "deleted"}}
    assert len(items) == 4
    await apply(graph, {"op": "restore", "kind": "users", "id": victims[1]})
    restored, _ = await round_from(graph, next_link)
    assert [r["id"] for r in restored] == [victims[1]] and "@removed" not in restored[0]


async def test_updates_are_compacted_last_wins(graph: GraphHarness) -> None:
    link = await latest(graph, "/applications/delta")
    app_id = graph.ids("applications")[0]
    await apply(graph, *({"op": "update", "kind": "applications", "id": app_id, "patch": {"notes": f"v{i}"}}
                         for i in range(3)))
    items, _ = await round_from(graph, link)
    assert [(i["id"], i["notes"]) for i in items] == [(app_id, "v2")]


async def test_directory_roles_delta(graph: GraphHarness) -> None:
    items, link = await round_from(graph, "/directoryRoles/delta")
    assert [r["id"] for r in items] == graph.ids("directoryRoles")
    assert "$deltatoken=" in link
    assert (await round_from(graph, link))[0] == []


async def test_change_rounds_page_with_skiptokens(graph: GraphHarness) -> None:
    await graph.admin("PATCH", "/settings", {"directory_delta_page_size": 3})
    try:
        link = await latest(graph, "/servicePrincipals/delta")
        sps = graph.ids("servicePrincipals")[:7]
        await apply(graph, *({"op": "update", "kind": "servicePrincipals", "id": s, "patch": {"notes": "x"}}
                             for s in sps))
        items, pages = await graph.walk(link)
        assert [i["id"] for i in items] == sps
        assert [len(p["value"]) for p in pages] == [3, 3, 1]
        assert all("$skiptoken=" in p["@odata.nextLink"] for p in pages[:-1])
    finally:
        await graph.admin("PATCH", "/settings", {"directory_delta_page_size": 100})


async def test_groups_delta_members(graph: GraphHarness) -> None:
    items, link = await round_from(graph, "/groups/delta?$select=displayName,members")
    group = items[0]
    assert set(group) == {"id", "displayName", "members@delta"}
    assert [m["id"] for m in group["members@delta"]] == graph.ids("groupMembers", group["id"])
    member_ids = set(graph.ids("groupMembers", group["id"]))
    outsider = next(u for u in graph.ids("users") if u not in member_ids)
    leaving = graph.ids("groupMembers", group["id"])[0]
    await apply(graph, {"op": "add_member", "group_id": group["id"], "member_id": outsider},
                {"op": "remove_member", "group_id": group["id"], "member_id": leaving})
    changes, _ = await round_from(graph, link)
    entry = next(c for c in changes if c["id"] == group["id"])
    delta = {m["id"]: m for m in entry["members@delta"]}
    assert delta[outsider] == {"@odata.type": "#microsoft.graph.user", "id": outsider}
    assert delta[leaving]["@removed"] == {"reason": "deleted"}
    # Without members in $select, membership changes are not reported.
    plain = await latest(graph, "/groups/delta?$select=displayName")
    await apply(graph, {"op": "remove_member", "group_id": group["id"], "member_id": outsider})
    assert (await round_from(graph, plain))[0] == []


async def test_id_filter_and_unsupported_options(graph: GraphHarness) -> None:
    wanted = graph.ids("users")[:2]
    flt = quote(f"id eq '{wanted[0]}' or id eq '{wanted[1]}'")
    items, _ = await round_from(graph, f"/users/delta?$filter={flt}")
    assert [i["id"] for i in items] == wanted
    reply = await graph.get("/users/delta?$filter=" + quote("displayName eq 'x'"))
    assert reply.status == 400 and reply.json["error"]["code"] == "Request_UnsupportedQuery"
    reply = await graph.get("/users/delta?$orderby=displayName")
    assert reply.status == 400


# --- 410 Gone --------------------------------------------------------------------------------------------------
async def test_expired_tokens_answer_410_with_location(graph: GraphHarness) -> None:
    users_link = await latest(graph, "/users/delta?$select=displayName")
    groups_link = await latest(graph, "/groups/delta")
    await graph.admin("POST", "/delta/expire", {"kind": "users"})
    gone = await graph.get(users_link)
    assert gone.status == 410
    assert gone.json["error"]["code"] == "resyncRequired"
    location = gone.headers["Location"]
    assert location.startswith(f"{graph.base}/v1.0/users/delta?") and "$select=displayName" in location
    assert (await graph.get(groups_link)).status == 200  # other partitions keep their tokens
    fresh, _ = await round_from(graph, location)
    assert len(fresh) == len(graph.ids("users"))
    await graph.admin("POST", "/delta/expire", {})
    assert (await graph.get(groups_link)).status == 410


async def test_forged_and_foreign_tokens_are_410(graph: GraphHarness) -> None:
    link = await latest(graph, "/users/delta")
    assert (await graph.get(link[:-6] + "AAAAAA")).status == 410
    token = dict(parse_qsl(urlsplit(link).query))["$deltatoken"]
    foreign = await graph.get(f"/groups/delta?$deltatoken={token}")  # a users token on groups
    assert foreign.status == 410


async def test_directory_tokens_age_out(graph: GraphHarness) -> None:
    link = await latest(graph, "/users/delta")
    await graph.admin("PATCH", "/settings", {"delta_token_ttl_seconds": 0.000001})
    try:
        assert (await graph.get(link)).status == 410
    finally:
        await graph.admin("PATCH", "/settings", {"delta_token_ttl_seconds": 7 * 24 * 3600})


async def test_tokens_survive_restart(graph: GraphHarness) -> None:
    link = await latest(graph, "/users/delta?$select=displayName")
    _, skip_pages = await graph.walk("/users?$top=100")
    next_link = skip_pages[0]["@odata.nextLink"]
    user = graph.ids("users")[0]
    await apply(graph, {"op": "update", "kind": "users", "id": user, "patch": {"displayName": "After Restart"}})
    await graph.restart()
    await graph.admin("PATCH", "/settings", {"throttle": {"enabled": False}})
    items, _ = await round_from(graph, link)
    assert items == [{"id": user, "displayName": "After Restart"}]
    assert (await graph.get(next_link)).status == 200  # skiptokens too


# --- Outlook -------------------------------------------------------------------------------------------------------
async def test_message_delta_per_folder(graph: GraphHarness) -> None:
    user = mail_user(graph)
    folder = max(graph.ids("mailFolders", user), key=lambda f: len(graph.ids("folderMessages", user, f)))
    url = f"/users/{user}/mailFolders/{quote(folder, safe='')}/messages/delta"
    items, pages = await graph.walk(url, headers={"Prefer": "odata.maxpagesize=4"})
    assert [i["id"] for i in items] == graph.ids("folderMessages", user, folder)
    assert all(len(p["value"]) <= 4 for p in pages)
    assert pages[0]["@odata.context"].endswith("$metadata#Collection(message)")
    link = pages[-1]["@odata.deltaLink"]
    created, = await apply(graph, {"op": "create", "kind": "folderMessages", "parents": [user, folder],
                                   "record": {"subject": "delta hello"}})
    victim = graph.ids("folderMessages", user, folder)[0]
    await apply(graph, {"op": "delete", "kind": "folderMessages", "parents": [user, folder], "id": victim})
    changes, _ = await round_from(graph, link)
    by_id = {c["id"]: c for c in changes}
    assert by_id[created["id"]]["subject"] == "delta hello"
    assert by_id[victim] == {"@odata.type": "#microsoft.graph.message", "id": victim, "@removed": {"reason": "deleted"}}
    await graph.admin("POST", "/delta/expire", {"kind": "folderMessages", "parent_ids": [user, folder]})
    gone = await graph.get(link)
    assert gone.status == 410 and gone.json["error"]["code"] == "syncStateNotFound"


async def test_message_delta_page_size_follows_each_requests_prefer(graph: GraphHarness) -> None:
    """delta-query-messages.md sends `Prefer: odata.maxpagesize` with every request of a round: the size a
    nextLink is followed with is that request's, and without the header the round's first size still holds."""
    user = mail_user(graph)
    folder = max(graph.ids("mailFolders", user), key=lambda f: len(graph.ids("folderMessages", user, f)))
    expected = graph.ids("folderMessages", user, folder)
    assert len(expected) >= 6
    url = f"/users/{user}/mailFolders/{quote(folder, safe='')}/messages/delta"
    first = await graph.get(url, headers={"Prefer": "odata.maxpagesize=1"})
    assert len(first.json["value"]) == 1
    wider = await graph.get(first.json["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=3"})
    assert len(wider.json["value"]) == 3
    bare = await graph.get(wider.json["@odata.nextLink"])
    assert len(bare.json["value"]) == 1
    rest, _ = await graph.walk(bare.json["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=1000"})
    pages = [first.json, wider.json, bare.json]
    assert [i["id"] for p in pages for i in p["value"]] + [i["id"] for i in rest] == expected


async def test_calendar_view_delta(graph: GraphHarness) -> None:
    user = mail_user(graph)
    base = f"/users/{user}/calendarView/delta"
    missing = await graph.get(base)
    assert missing.status == 400 and missing.json["error"]["code"] == "ErrorInvalidParameter"
    window = "startDateTime=1990-01-01T00:00:00Z&endDateTime=2100-01-01T00:00:00Z"
    no_select = await graph.get(f"{base}?{window}&$select=subject")
    assert no_select.status == 400
    items, link = await round_from(graph, f"{base}?{window}")
    assert sorted(i["id"] for i in items) == sorted(graph.ids("events", user))
    event = graph.ids("events", user)[0]
    await apply(graph, {"op": "update", "kind": "events", "parents": [user], "id": event,
                        "patch": {"subject": "Moved"}})
    changes, _ = await round_from(graph, link)
    assert [(c["id"], c["subject"]) for c in changes] == [(event, "Moved")]


async def test_contacts_delta_per_folder(graph: GraphHarness) -> None:
    user = mail_user(graph)
    folder = graph.ids("contactFolders", user)[0]
    url = f"/users/{user}/contactFolders/{quote(folder, safe='')}/contacts/delta"
    items, link = await round_from(graph, url)
    assert [i["id"] for i in items] == graph.ids("folderContacts", user, folder)
    victim = items[0]["id"]
    await apply(graph, {"op": "delete", "kind": "folderContacts", "parents": [user, folder], "id": victim})
    changes, _ = await round_from(graph, link)
    assert changes == [{"@odata.type": "#microsoft.graph.contact", "id": victim, "@removed": {"reason": "deleted"}}]


async def test_contact_folders_are_the_children_of_the_default_folder(graph: GraphHarness) -> None:
    """As in Graph: `/contactFolders` lists the folders IN the default Contacts folder (not the default folder),
    `/contacts` is the default folder's contacts, and the default folder stays addressable by its id."""
    user = mail_user(graph)
    children, _ = await graph.walk(f"/users/{user}/contactFolders")
    default_contacts, _ = await graph.walk(f"/users/{user}/contacts")
    assert children and default_contacts
    default = {c["parentFolderId"] for c in default_contacts}
    assert len(default) == 1 and {f["parentFolderId"] for f in children} == default
    default_id = default.pop()
    assert default_id not in {f["id"] for f in children}
    listed = {c["id"] for f in children for c in (await graph.walk(
        f"/users/{user}/contactFolders/{quote(f['id'], safe='')}/contacts"))[0]}
    assert listed and not listed & {c["id"] for c in default_contacts}
    items, _ = await round_from(graph, f"/users/{user}/contactFolders/{quote(default_id, safe='')}/contacts/delta")
    assert sorted(i["id"] for i in items) == sorted(c["id"] for c in default_contacts)


async def test_all_chat_messages_delta(graph: GraphHarness) -> None:
    user = mail_user(graph)
    chats = graph.ids("chats", user)
    expected = [m for c in chats for m in graph.ids("chatMessages", c)]
    items, pages = await graph.walk(f"/users/{user}/chats/getAllMessages/delta?$top=20")
    assert [i["id"] for i in items] == expected
    assert all(len(p["value"]) <= 20 for p in pages) and pages[0]["@odata.context"].endswith("Collection(chatMessage)")
    link = pages[-1]["@odata.deltaLink"]
    await apply(graph, {"op": "update", "kind": "chatMessages", "parents": [chats[0]], "id": expected[0],
                        "patch": {"importance": "urgent"}})
    changes, _ = await round_from(graph, link)
    assert [(c["id"], c["importance"]) for c in changes] == [(expected[0], "urgent")]


# --- drives --------------------------------------------------------------------------------------------------------
async def test_drive_delta_token_links_and_deleted_facet(graph: GraphHarness) -> None:
    user = mail_user(graph)
    drive = graph.ids("drives", user)[0]
    items, pages = await graph.walk(f"/drives/{drive}/root/delta?$top=4")
    assert [i["id"] for i in items] == graph.ids("driveItems", drive)
    assert all("?token=" in p["@odata.nextLink"] for p in pages[:-1])
    link = pages[-1]["@odata.deltaLink"]
    assert "?token=" in link
    via_user, _ = await graph.walk(f"/users/{user}/drive/root/delta?$top=50")
    assert [i["id"] for i in via_user] == [i["id"] for i in items]
    victim = next(i for i in items if "file" in i)
    await apply(graph, {"op": "delete", "kind": "driveItems", "parents": [drive], "id": victim["id"]})
    changes, _ = await round_from(graph, link)
    gone = next(c for c in changes if c["id"] == victim["id"])
    assert gone["deleted"] == {"state": "deleted"} and "@removed" not in gone
    now = await graph.get(f"/drives/{drive}/root/delta?token=latest")
    assert now.json["value"] == [] and "?token=" in now.json["@odata.deltaLink"]
    await graph.admin("POST", "/delta/expire", {})
    expired = await graph.get(now.json["@odata.deltaLink"])
    assert expired.status == 410 and expired.json["error"]["code"] == "resyncChangesApplyDifferences"
    assert expired.headers["Location"].startswith(f"{graph.base}/v1.0/drives/{drive}/root/delta")
