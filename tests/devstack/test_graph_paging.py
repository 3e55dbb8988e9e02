"""Paging for every endpoint: follow nextLinks to the end (nothing missing, nothing repeated, the tenant's
count), default and maximum `$top`, skiptoken vs `$skip` link forms, `@odata.context`/`@odata.count`, and the
query options `$select`, `$filter`, `$orderby`."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from devstack.graph import endpoints
from devstack.graph.odata_filter import parse_datetime
from tests.devstack.test_graph_support import GraphHarness, running_harness

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
async def graph(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphHarness]:
    # Paging is under test here; each throttling rule has its own tests (test_graph_limits).
    async with running_harness(Path(tmp_path_factory.mktemp("graph-paging")), throttled=False) as harness:
        yield harness


_PICKS: dict[tuple[int, str], str] = {}


def ok_user(g: GraphHarness) -> str:
    """A user with a mailbox and a OneDrive whose mailbox is largest (more pages); computed once per harness."""
    key = (id(g), "user")
    if key not in _PICKS:
        users = [u for u in g.ids("users") if g.tenant.mailbox_state(u) == "ok" and g.tenant.has_onedrive(u)]
        _PICKS[key] = max(users, key=lambda u: g.tenant.collection("messages", u).count())  # type: ignore[union-attr]
    return _PICKS[key]


def team(g: GraphHarness) -> str:
    teams = [str(r["id"]) for r in g.records("groups") if "Team" in (r.get("resourceProvisioningOptions") or [])]
    return max(teams, key=lambda t: len(g.ids("teamMembers", t)))


def folder(g: GraphHarness, kind: str, user: str, child: str) -> str:
    return max(g.ids(kind, user), key=lambda f: len(g.ids(child, user, f)))


def chat(g: GraphHarness) -> str:
    return max(g.ids("chats", ok_user(g)), key=lambda c: g.tenant.collection("chatMessages", c).count())  # type: ignore[union-attr]


def drive(g: GraphHarness) -> str:
    return g.ids("drives", ok_user(g))[0]


def root_children(g: GraphHarness) -> list[str]:
    items = g.records("driveItems", drive(g))
    root = next(r for r in items if "root" in r)
    return [r["id"] for r in items if (r.get("parentReference") or {}).get("id") == root["id"] and "root" not in r]


WIDE = "startDateTime=1990-01-01T00:00:00Z&endDateTime=2100-01-01T00:00:00Z"

# name -> (url builder, expected ids builder, small $top to force several pages, or None when Graph doesn't page)
Case = tuple[Callable[[GraphHarness], str], Callable[[GraphHarness], list[str]], int | None]
CASES: dict[str, Case] = {
    "users": (lambda g: "/users", lambda g: g.ids("users"), 40),
    "groups": (lambda g: "/groups", lambda g: g.ids("groups"), 7),
    "applications": (lambda g: "/applications", lambda g: g.ids("applications"), 5),
    "service_principals": (lambda g: "/servicePrincipals", lambda g: g.ids("servicePrincipals"), 6),
    "group_members": (lambda g: f"/groups/{biggest(g)}/members", lambda g: g.ids("groupMembers", biggest(g)), 5),
    "group_owners": (lambda g: f"/groups/{biggest(g)}/owners", lambda g: g.ids("groupOwners", biggest(g)), 1),
    "teams": (lambda g: "/teams", lambda g: [r["id"] for r in g.records("groups")
                                              if "Team" in (r.get("resourceProvisioningOptions") or [])], 2),
    "channels": (lambda g: f"/teams/{team(g)}/channels", lambda g: g.ids("channels", team(g)), None),
    "team_members": (lambda g: f"/teams/{team(g)}/members", lambda g: g.ids("teamMembers", team(g)), 4),
    "user_chats": (lambda g: f"/users/{ok_user(g)}/chats", lambda g: g.ids("chats", ok_user(g)), 1),
    "chat_messages": (lambda g: f"/chats/{chat(g)}/messages", lambda g: g.ids("chatMessages", chat(g)), 3),
    "user_all_chat_messages": (
        lambda g: f"/users/{ok_user(g)}/chats/getAllMessages",
        lambda g: [m for c in g.ids("chats", ok_user(g)) for m in g.ids("chatMessages", c)], 4),
    "messages": (lambda g: f"/users/{ok_user(g)}/messages", lambda g: g.ids("messages", ok_user(g)), 4),
    "mail_folders": (lambda g: f"/users/{ok_user(g)}/mailFolders", lambda g: g.ids("mailFolders", ok_user(g)), 2),
    "folder_messages": (
        lambda g: f"/users/{ok_user(g)}/mailFolders/{folder(g, 'mailFolders', ok_user(g), 'folderMessages')}/messages",
        lambda g: g.ids("folderMessages", ok_user(g), folder(g, "mailFolders", ok_user(g), "folderMessages")), 3),
    "events": (lambda g: f"/users/{ok_user(g)}/events", lambda g: g.ids("events", ok_user(g)), 5),
    "calendar_view": (lambda g: f"/users/{ok_user(g)}/calendarView?{WIDE}", lambda g: g.ids("events", ok_user(g)), 5),
    "contacts": (lambda g: f"/users/{ok_user(g)}/contacts", lambda g: g.ids("contacts", ok_user(g)), 4),
    "contact_folders": (lambda g: f"/users/{ok_user(g)}/contactFolders", lambda g: g.ids("contactFolders", ok_user(g)),
                        1),
    "folder_contacts": (
        lambda g: f"/users/{ok_user(g)}/contactFolders/"
                  f"{folder(g, 'contactFolders', ok_user(g), 'folderContacts')}/contacts",
        lambda g: g.ids("folderContacts", ok_user(g), folder(g, "contactFolders", ok_user(g), "folderContacts")), 2),
    "user_drives": (lambda g: f"/users/{ok_user(g)}/drives", lambda g: g.ids("drives", ok_user(g)), 1),
    "drive_root_children": (lambda g: f"/drives/{drive(g)}/root/children", root_children, 3),
    "drive_children": (lambda g: f"/drives/{drive(g)}/items/root/children", root_children, 3),
    "directory_audits": (lambda g: "/auditLogs/directoryAudits", lambda g: g.ids("directoryAudits"), 30),
    "sign_ins": (lambda g: "/auditLogs/signIns", lambda g: g.ids("signIns")[::-1], 30),  # newest first
    "ca_policies": (lambda g: "/identity/conditionalAccess/policies", lambda g: g.ids("conditionalAccessPolicies"),
                    None),
    "directory_roles": (lambda g: "/directoryRoles", lambda g: g.ids("directoryRoles"), None),
    "directory_role_members": (lambda g: f"/directoryRoles/{g.ids('directoryRoles')[0]}/members",
                               lambda g: g.ids("directoryRoleMembers", g.ids("directoryRoles")[0]), None),
    "directory_role_templates": (lambda g: "/directoryRoleTemplates", lambda g: g.ids("directoryRoleTemplates"),
                                 None),
}


def biggest(g: GraphHarness) -> str:
    return max(g.ids("groups"), key=lambda x: len(g.ids("groupMembers", x)))


def with_top(url: str, top: int) -> str:
    return f"{url}{'&' if '?' in url else '?'}$top={top}"


@pytest.mark.parametrize("name", sorted(CASES))
async def test_every_endpoint_pages_completely(graph: GraphHarness, name: str) -> None:
    url_of, expected_of, small = CASES[name]
    url, expected = url_of(graph), expected_of(graph)
    assert expected, f"the test tenant has no data for {name}"
    ep = endpoints.BY_NAME[name]
    items, pages = await graph.walk(url)  # default page size
    assert [i["id"] for i in items] == expected
    if ep.paging.default is None:
        assert len(pages) == 1
    else:
        assert len(pages) == max(1, math.ceil(len(expected) / ep.paging.default))
        assert all(len(p["value"]) == ep.paging.default for p in pages[:-1])
    if small is not None:
        items, pages = await graph.walk(with_top(url, small))
        ids = [i["id"] for i in items]
        assert ids == expected and len(set(ids)) == len(ids)
        assert len(pages) == math.ceil(len(expected) / small)
        assert all(len(p["value"]) <= small for p in pages)
        for page in pages[:-1]:
            check_next_link(graph, ep, page["@odata.nextLink"], small)
    if ep.paging.maximum is not None:  # over-maximum $top is clamped, not rejected
        items, pages = await graph.walk(with_top(url, ep.paging.maximum * 10))
        assert [i["id"] for i in items] == expected
        assert all(len(p["value"]) <= ep.paging.maximum for p in pages)


def check_next_link(graph: GraphHarness, ep: endpoints.Endpoint, link: str, top: int) -> None:
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == graph.base  # absolute, on the emulator's own origin
    params = dict(parse_qsl(parts.query))
    assert params["$top"] == str(top)  # the original query travels in the link
    if ep.paging.style == "skip":
        assert "%24skip=" in parts.query and "$skiptoken" not in params  # Outlook: percent-encoded $skip
    else:
        assert "$skiptoken" in params and "$skip" not in params


async def test_top_is_clamped_to_the_maximum(graph: GraphHarness) -> None:
    big = max((c for u in graph.ids("users")[:40] for c in graph.ids("chats", u)),
              key=lambda c: graph.tenant.collection("chatMessages", c).count())  # type: ignore[union-attr]
    url = f"/chats/{big}/messages?$top=500"
    expected = graph.ids("chatMessages", big)
    assert len(expected) > 50, "the test tenant needs a chat with more than 50 messages"
    _, pages = await graph.walk(url)
    assert len(pages[0]["value"]) == 50
    users, pages = await graph.walk("/users?$top=5000")
    assert len(pages) == 1 and len(users) == len(graph.ids("users"))  # 999 max > tenant size


async def test_context_and_count(graph: GraphHarness) -> None:
    reply = await graph.get("/users?$count=true&$top=10&$select=displayName,mail",
                            headers={"ConsistencyLevel": "eventual"})
    body = reply.json
    assert body["@odata.context"] == f"{graph.base}/v1.0/$metadata#users(displayName,mail)"
    assert body["@odata.count"] == len(graph.ids("users"))
    assert list(body)[:3] == ["@odata.context", "@odata.count", "@odata.nextLink"]
    second = (await graph.get(body["@odata.nextLink"], headers={"ConsistencyLevel": "eventual"})).json
    assert "@odata.count" not in second  # first page only
    user = ok_user(graph)
    msgs = (await graph.get(f"/users/{user}/messages?$count=true")).json
    assert msgs["@odata.context"] == f"{graph.base}/v1.0/$metadata#users('{user}')/messages"
    assert msgs["@odata.count"] == len(graph.ids("messages", user))
    assert list(msgs)[-1] == "@odata.nextLink"  # Outlook puts the link after the value


async def test_count_needs_consistency_level(graph: GraphHarness) -> None:
    reply = await graph.get("/users?$count=true")
    assert reply.status == 400 and reply.json["error"]["code"] == "Request_UnsupportedQuery"


async def test_select_and_default_property_sets(graph: GraphHarness) -> None:
    default = (await graph.get("/users?$top=3")).json["value"]
    assert all(set(u) == set(endpoints.USER_DEFAULT_SELECT) for u in default)
    picked = (await graph.get("/users?$top=3&$select=id,city,accountEnabled")).json["value"]
    assert all(set(u) == {"id", "city", "accountEnabled"} for u in picked)
    user = ok_user(graph)
    message = (await graph.get(f"/users/{user}/messages?$top=1")).json["value"][0]
    assert {"subject", "body", "from", "receivedDateTime", "isRead"} <= set(message)  # Outlook returns everything
    slim = (await graph.get(f"/users/{user}/messages?$top=2&$select=subject")).json["value"]
    assert all(set(m) - {"@odata.etag"} == {"id", "subject"} for m in slim)  # id always comes back
    bad = await graph.get("/users?$select=noSuchProperty")
    assert bad.status == 400 and bad.json["error"]["code"] == "Request_BadRequest"


async def test_filters_and_orderby(graph: GraphHarness) -> None:
    users = graph.records("users")
    prefix = users[5]["displayName"][:2]
    expected = [u["id"] for u in users if u["displayName"].lower().startswith(prefix.lower())]
    got, _ = await graph.walk(f"/users?$filter=startswith(displayName,'{prefix}')&$top=3")
    assert [u["id"] for u in got] == expected
    teams, _ = await graph.walk("/groups?$filter=resourceProvisioningOptions/Any(x:x eq 'Team')&$select=id")
    assert [t["id"] for t in teams] == CASES["teams"][1](graph)
    enabled, _ = await graph.walk("/users?$filter=accountEnabled eq true and userType ne 'Guest'&$select=id")
    assert [u["id"] for u in enabled] == [u["id"] for u in users
                                         if u["accountEnabled"] is True and u.get("userType") != "Guest"]
    ordered, _ = await graph.walk("/users?$orderby=displayName&$top=50&$select=id,displayName")
    names = [u["displayName"].casefold() for u in ordered]
    assert names == sorted(names) and len(ordered) == len(users)
    user = ok_user(graph)
    msgs, _ = await graph.walk(f"/users/{user}/messages?$orderby=receivedDateTime desc&$top=40")
    stamps = [parse_datetime(m["receivedDateTime"]) for m in msgs]
    assert stamps == sorted(stamps, reverse=True) and len(msgs) == len(graph.ids("messages", user))
    cutoff = sorted(stamps)[len(stamps) // 2].isoformat().replace("+00:00", "Z")
    recent, _ = await graph.walk(f"/users/{user}/messages?$filter=receivedDateTime ge {cutoff}&$top=2")
    assert len(recent) == sum(1 for s in stamps if s >= parse_datetime(cutoff))
    audits = graph.records("directoryAudits")
    when = sorted(a["activityDateTime"] for a in audits)[len(audits) // 3]
    got, _ = await graph.walk(f"/auditLogs/directoryAudits?$filter=activityDateTime ge {when}")
    assert len(got) == sum(1 for a in audits if parse_datetime(a["activityDateTime"]) >= parse_datetime(when))


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/users?$orderby=city", 400, "Request_UnsupportedQuery"),
        ("/users?$skip=10", 400, "Request_BadRequest"),
        ("/users?$filter=displayName eq", 400, "BadRequest"),
        ("/users?$search=\"displayName:a\"", 400, "Request_UnsupportedQuery"),
        ("/users?$top=-1", 400, "BadRequest"),
        ("/users?$skiptoken=forged", 400, "Directory_ExpiredPageToken"),
    ],
)
async def test_unsupported_queries(graph: GraphHarness, url: str, status: int, code: str) -> None:
    reply = await graph.get(url)
    assert reply.status == status and reply.json["error"]["code"] == code, reply.raw[:300]


async def test_calendar_view_window(graph: GraphHarness) -> None:
    user = ok_user(graph)
    missing = await graph.get(f"/users/{user}/calendarView")
    assert missing.status == 400 and missing.json["error"]["code"] == "ErrorInvalidParameter"
    events = graph.records("events", user)
    starts = sorted(parse_datetime(e["start"]["dateTime"]) for e in events)
    lo, hi = starts[len(starts) // 4], starts[3 * len(starts) // 4]
    window = f"startDateTime={lo.isoformat()[:19]}Z&endDateTime={hi.isoformat()[:19]}Z"
    got, _ = await graph.walk(f"/users/{user}/calendarView?{window}&$top=3")

    def overlaps(e: dict[str, Any]) -> bool:
        return parse_datetime(e["start"]["dateTime"]) < hi and parse_datetime(e["end"]["dateTime"]) > lo

    assert [e["id"] for e in got] == [e["id"] for e in events if overlaps(e)]
    assert 0 < len(got) < len(events)


async def test_chat_message_filters_need_the_matching_orderby(graph: GraphHarness) -> None:
    messages = graph.records("chatMessages", chat(graph))
    cutoff = sorted(m["lastModifiedDateTime"] for m in messages)[len(messages) // 2]
    flt = f"lastModifiedDateTime gt {cutoff}"
    ignored, _ = await graph.walk(f"/chats/{chat(graph)}/messages?$filter={flt}")
    assert len(ignored) == len(messages)  # Graph ignores the filter without $orderby on the same property
    applied, _ = await graph.walk(f"/chats/{chat(graph)}/messages?$filter={flt}&$orderby=lastModifiedDateTime desc")
    assert 0 < len(applied) == sum(1 for m in messages if parse_datetime(m["lastModifiedDateTime"]) >
                                   parse_datetime(cutoff))
    stamps = [parse_datetime(m["lastModifiedDateTime"]) for m in applied]
    assert stamps == sorted(stamps, reverse=True)
    asc = await graph.get(f"/chats/{chat(graph)}/messages?$orderby=lastModifiedDateTime asc")
    assert asc.status == 400


async def test_outlook_orderby_must_lead_the_filter(graph: GraphHarness) -> None:
    user = ok_user(graph)
    bad = await graph.get(f"/users/{user}/messages?$filter=isRead eq false and receivedDateTime ge 2020-01-01"
                          "&$orderby=receivedDateTime desc")
    assert bad.status == 400 and bad.json["error"]["code"] == "InefficientFilter"
    good = await graph.get(f"/users/{user}/messages?$filter=receivedDateTime ge 2020-01-01 and isRead eq false"
                           "&$orderby=receivedDateTime desc")
    assert good.status == 200


async def test_sign_ins_most_recent_first(graph: GraphHarness) -> None:
    body = (await graph.get("/auditLogs/signIns?$top=5")).json
    stamps = [parse_datetime(s["createdDateTime"]) for s in body["value"]]
    assert stamps == sorted(stamps, reverse=True)
    assert body["value"][0]["id"] == graph.ids("signIns")[-1]


async def test_outlook_honours_prefer_maxpagesize(graph: GraphHarness) -> None:
    user = ok_user(graph)
    reply = await graph.get(f"/users/{user}/messages", headers={"Prefer": "odata.maxpagesize=3"})
    assert len(reply.json["value"]) == 3 and reply.headers["Preference-Applied"] == "odata.maxpagesize=3"
    items, _ = await graph.walk(f"/users/{user}/messages", headers={"Prefer": "odata.maxpagesize=25"})
    assert [m["id"] for m in items] == graph.ids("messages", user)


async def test_well_known_folder_names(graph: GraphHarness) -> None:
    user = ok_user(graph)
    inbox = next(f for f in graph.records("mailFolders", user) if f["displayName"] == "Inbox")
    expected = graph.ids("folderMessages", user, inbox["id"])
    for name in ("inbox", "Inbox", "('inbox')"):
        path = f"/users/{user}/mailFolders{'' if name.startswith('(') else '/'}{name}/messages?$top=5&$select=id"
        got, _ = await graph.walk(path)
        assert [m["id"] for m in got] == expected


async def test_outlook_ids_with_reserved_characters(graph: GraphHarness) -> None:
    user = ok_user(graph)
    folders = graph.ids("mailFolders", user)
    special = next((f for f in folders if any(c in f for c in "/+=")), folders[0])
    from urllib.parse import quote

    plain = await graph.get(f"/users/{user}/mailFolders/{quote(special, safe='')}/messages?$top=2")
    keyed = await graph.get(f"/users('{user}')/mailFolders('{quote(special, safe='')}')/messages?$top=2")
    assert plain.status == keyed.status == 200
    assert plain.json["value"] == keyed.json["value"]


async def test_empty_pages_with_next_link_are_served_and_complete(graph: GraphHarness) -> None:
    await graph.admin("PATCH", "/settings", {"faults": {"empty_page_rate": 0.5, "seed": 5}})
    try:
        items, pages = await graph.walk("/groups?$top=5")
        assert [i["id"] for i in items] == graph.ids("groups")
        assert any(p["value"] == [] and "@odata.nextLink" in p for p in pages)
    finally:
        await graph.admin("PATCH", "/settings", {"faults": {"empty_page_rate": 0.0}})
