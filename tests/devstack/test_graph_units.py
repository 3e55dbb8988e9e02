"""Pure parts of the Graph emulator: routing, query options, paging, cursors, delta compaction, faults, batch
validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.graph import batch, cursors, delta, endpoints, faults, paging, query
from devstack.graph.errors import GraphError
from devstack.graph.settings import FaultSettings
from devstack.tenant.model import Change


def rows(n: int) -> paging.ListCollection:
    return paging.ListCollection("users", [{"id": f"u{i:03}", "n": i, "even": i % 2 == 0} for i in range(n)])


# --- routing -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "name", "keys"),
    [
        ("/users", "users", ()),
        ("/users/delta", "users_delta", ()),
        ("/users/microsoft.graph.delta()", "users_delta", ()),
        ("/users/a@b.com", "user", ("a@b.com",)),
        ("/users('u1')/mailFolders('AAMk%2Fa%2Bb%3D')/messages/delta", "folder_messages_delta", ("u1", "AAMk/a+b=")),
        ("/users/u1/mailfolders/f1/messages", "folder_messages", ("u1", "f1")),
        ("/users/u1/chats/getAllMessages", "user_all_chat_messages", ("u1",)),
        ("/groups/g1/transitiveMembers", "group_transitive_members", ("g1",)),
        ("/drives/d1/items/i1/children", "drive_children", ("d1", "i1")),
        ("/identity/conditionalAccess/policies", "ca_policies", ()),
        ("/chats", "chats_all", ()),
    ],
)
def test_routes(path: str, name: str, keys: tuple[str, ...]) -> None:
    ep, got = endpoints.match(endpoints.split_path(path))
    assert (ep.name, got) == (name, keys)


def test_unknown_route() -> None:
    with pytest.raises(endpoints.RouteError):
        endpoints.match(endpoints.split_path("/users/u1/nothing"))


def test_every_endpoint_has_a_permission_row() -> None:
    from devstack.graph.permissions import PERMISSIONS

    assert {e.name for e in endpoints.ENDPOINTS} == set(PERMISSIONS)


# --- query options -----------------------------------------------------------------------------------------------
USERS = endpoints.BY_NAME["users"]
MESSAGES = endpoints.BY_NAME["messages"]


def test_query_string_decodes_like_graph() -> None:
    assert query.parse_query_string("$filter=a%20eq%20'x+y%2Bz'&$top=5&flag") == [
        ("$filter", "a eq 'x y+z'"), ("$top", "5"), ("flag", "")]


@pytest.mark.parametrize(
    ("pairs", "headers", "code"),
    [
        ([("$top", "0")], {}, "BadRequest"),
        ([("$top", "abc")], {}, "BadRequest"),
        ([("$skip", "5")], {}, "Request_BadRequest"),
        ([("$count", "true")], {}, "Request_UnsupportedQuery"),
        ([("$orderby", "mail")], {}, "Request_UnsupportedQuery"),
        ([("$filter", "displayName eq")], {}, "BadRequest"),
        ([("$bogus", "1")], {}, "BadRequest"),
        ([("$top", "1"), ("$top", "2")], {}, "BadRequest"),
    ],
)
def test_bad_options_are_graph_errors(pairs: list[tuple[str, str]], headers: dict[str, str], code: str) -> None:
    with pytest.raises(GraphError) as info:
        query.parse_options(USERS, pairs, headers)
    assert info.value.status == 400 and info.value.code == code


def test_count_with_eventual_and_options_without_dollar() -> None:
    opts = query.parse_options(USERS, [("$count", "true"), ("top", "5"), ("select", "id")],
                               {"ConsistencyLevel": "eventual"})
    assert (opts.count, opts.top, opts.select) == (True, 5, ("id",))


def test_top_default_and_clamp() -> None:
    assert query.effective_top(USERS, None) == 100
    assert query.effective_top(USERS, 5000) == 999
    assert query.effective_top(MESSAGES, None) == 10
    assert query.effective_top(MESSAGES, 5000) == 1000
    assert query.effective_top(endpoints.BY_NAME["directory_roles"], 5) is None


def test_calendar_view_requires_window() -> None:
    ep = endpoints.BY_NAME["calendar_view"]
    with pytest.raises(GraphError) as info:
        query.parse_options(ep, [("startDateTime", "2024-01-01T00:00:00Z")], {})
    assert info.value.code == "ErrorInvalidParameter"
    opts = query.parse_options(ep, [("startDateTime", "2024-01-01T00:00:00Z"), ("endDateTime", "2024-02-01")], {})
    assert (opts.start, opts.end) == ("2024-01-01T00:00:00Z", "2024-02-01")


def test_message_delta_filter_is_restricted() -> None:
    ep = endpoints.BY_NAME["folder_messages_delta"]
    query.parse_options(ep, [("$filter", "receivedDateTime ge 2024-01-01T00:00:00Z")], {})
    with pytest.raises(GraphError):
        query.parse_options(ep, [("$filter", "subject eq 'x'")], {})


def test_projection() -> None:
    record = {"@odata.type": "#microsoft.graph.user", "id": "1", "displayName": "A", "mail": None, "city": "X"}
    assert query.project(record, ("DISPLAYNAME",), default=None) == {"@odata.type": "#microsoft.graph.user",
                                                                     "displayName": "A"}
    assert query.project(record, None, default=("id", "mail")) == {"@odata.type": "#microsoft.graph.user",
                                                                   "id": "1", "mail": None}
    assert query.project(record, ("city",), default=None, always=("id",), hidden=frozenset({"city"})) == {
        "@odata.type": "#microsoft.graph.user", "id": "1"}
    with pytest.raises(GraphError) as info:
        query.check_select(USERS, ("nope",), record)
    assert info.value.code == "Request_BadRequest"


# --- paging ------------------------------------------------------------------------------------------------------
def _walk(coll: paging.ListCollection, **kw: object) -> list[str]:
    seen: list[str] = []
    start = 0
    for _ in range(1000):
        page = paging.compute_page(coll, start=start, **kw)  # type: ignore[arg-type]
        seen.extend(r["id"] for r in page.records)
        if page.next_start is None:
            return seen
        start = page.next_start
    raise AssertionError("paging did not terminate")


@pytest.mark.parametrize("top", [1, 7, 10, 11, 100])
def test_offset_paging_is_complete_without_repeats(top: int) -> None:
    assert _walk(rows(10), top=top) == [f"u{i:03}" for i in range(10)]


@pytest.mark.parametrize("top", [1, 3, 5])
def test_filtered_scan_with_budget_yields_empty_pages_but_completes(top: int) -> None:
    coll = rows(50)
    first = paging.compute_page(coll, start=0, top=top, predicate=lambda r: r["n"] >= 45, scan_budget=10)
    assert first.records == [] and first.next_start == 10  # an empty page with a cursor, as Graph allows
    assert _walk(coll, top=top, predicate=lambda r: r["n"] >= 45, scan_budget=10) == [f"u{i:03}" for i in range(45, 50)]


def test_skip_counts_matches_and_orderby() -> None:
    coll = rows(10)
    even = [f"u{i:03}" for i in range(0, 10, 2)]
    assert _walk(coll, top=2, predicate=lambda r: r["even"], skip_counts_matches=True) == even
    ordered = _walk(coll, top=3, orderby=[("n", True)])
    assert ordered == [f"u{i:03}" for i in reversed(range(10))]
    counted = paging.compute_page(coll, start=0, top=2, predicate=lambda r: r["even"], want_count=True)
    assert counted.count == 5


def test_sort_nulls_and_case() -> None:
    recs: list[dict[str, Any]] = [{"id": "1", "k": "b"}, {"id": "2", "k": None}, {"id": "3", "k": "A"}]
    assert [r["id"] for r in paging.sort_records(recs, [("k", False)])] == ["2", "3", "1"]
    assert [r["id"] for r in paging.sort_records(recs, [("k", True)])] == ["1", "3", "2"]


def test_reversed_collection() -> None:
    rev = paging.ReversedCollection(rows(7))
    assert [r["id"] for r in rev.page(0, 3)] == ["u006", "u005", "u004"]
    assert [r["id"] for r in rev.page(5, 3)] == ["u001", "u000"]
    assert [r["id"] for r in rev.iter_from(2)] == [f"u{i:03}" for i in range(4, -1, -1)]
    assert _walk(rev, top=3) == [f"u{i:03}" for i in range(6, -1, -1)]  # type: ignore[arg-type]


def test_chain_collection_pages_across_parts() -> None:
    chain = paging.ChainCollection("chatMessages", [rows(3), rows(0), rows(2)])
    assert chain.count() == 5
    assert [r["id"] for r in chain.page(2, 2)] == ["u002", "u000"]


# --- cursors -----------------------------------------------------------------------------------------------------
def test_skiptoken_is_bound_to_its_query_and_key(tmp_path: Path) -> None:
    codec = cursors.TokenCodec.load_or_create(tmp_path)
    sig = cursors.query_signature("/users", [("$top", "5")])
    token = codec.skiptoken(25, sig)
    assert token.startswith("RFNwdA")  # the bytes Graph's directory skiptokens start with
    assert codec.open_skiptoken(token, sig) == 25
    assert cursors.TokenCodec.load_or_create(tmp_path).open_skiptoken(token, sig) == 25  # survives a restart
    with pytest.raises(cursors.BadToken):
        codec.open_skiptoken(token, cursors.query_signature("/users", [("$top", "6")]))
    with pytest.raises(cursors.BadToken):
        cursors.TokenCodec(b"other").open_skiptoken(token, sig)
    with pytest.raises(cursors.BadToken):
        codec.open_skiptoken(token[:-3] + "AAA", sig)


def test_epochs_persist(tmp_path: Path) -> None:
    epochs = cursors.DeltaEpochs(tmp_path)
    key = epochs.partition_key("folderMessages", ["u", "f"])
    epochs.expire(key)
    epochs.expire_all()
    again = cursors.DeltaEpochs(tmp_path)
    assert again.current(key) == (1, 1) and again.current("users") == (1, 0)


# --- delta compaction --------------------------------------------------------------------------------------------
def test_compact_last_wins_and_nets_membership() -> None:
    user = {"@odata.type": "#microsoft.graph.user", "id": "m1"}
    changes = [
        Change(1, "upsert", "a", {"id": "a", "v": 1}),
        Change(2, "upsert", "b", {"id": "b", "v": 1}),
        Change(3, "upsert", "a", {"id": "a", "v": 2}),
        Change(4, "members", "g", added=(user,)),
        Change(5, "members", "g", removed=(user,)),
        Change(6, "soft_deleted", "b"),
    ]
    entries = delta.compact(changes)
    assert [e.id for e in entries] == ["a", "g", "b"]
    rendered = [delta.render(e, style="directory", entity="group", project=dict, include_members=True)
                for e in entries]
    assert rendered[0] == {"id": "a", "v": 2}
    assert rendered[1] == {"id": "g", "members@delta": [{**user, "@removed": {"reason": "deleted"}}]}
    assert rendered[2] == {"id": "b", "@removed": {"reason": "changed"}}
    assert delta.render(entries[1], style="directory", entity="group", project=dict, include_members=False) is None


def test_render_styles_for_deletions() -> None:
    entry = delta.Entry("x", 1, "deleted", {"id": "x", "name": "a.txt", "parentReference": {"id": "p"}})
    assert delta.render(entry, style="drive", entity="driveItem", project=dict, include_members=False) == {
        "@odata.type": "#microsoft.graph.driveItem", "id": "x", "deleted": {"state": "deleted"}, "name": "a.txt",
        "parentReference": {"id": "p"}}
    assert delta.render(entry, style="outlook", entity="message", project=dict, include_members=False) == {
        "@odata.type": "#microsoft.graph.message", "id": "x", "@removed": {"reason": "deleted"}}


# --- faults ------------------------------------------------------------------------------------------------------
def test_fault_decisions_are_deterministic_and_rate_shaped() -> None:
    settings = FaultSettings(seed=3, error_rate=0.3, drop_rate=0.1, truncate_rate=0.1, latency_ms=5)
    draws = [faults.decide(settings, "GET", f"/users?$skiptoken={i}", 0) for i in range(2000)]
    again = [faults.decide(settings, "GET", f"/users?$skiptoken={i}", 0) for i in range(2000)]
    assert draws == again
    drops = sum(d.drop for d in draws) / 2000
    errors = sum(d.status is not None for d in draws) / 2000
    assert 0.07 < drops < 0.13 and 0.22 < errors < 0.33
    assert {d.status for d in draws if d.status} == {503, 504}
    assert all(d.retry_after is None for d in draws if d.status == 504)
    assert all(d.delay_seconds >= 0.005 for d in draws)
    retries = [faults.decide(settings, "GET", "/users", n) for n in range(50)]
    assert len(set(retries)) > 1  # a retry of the same URL gets a fresh draw
    assert not faults.applies(FaultSettings(error_rate=1, path_prefix="/users"), "/groups")


# --- batch validation ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "Invalid batch payload"),
        ({"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]}, "maximum of 20"),
        ({"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/me"}]},
         "duplicate"),
        ({"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}]}, "relative"),
        ({"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]}, "dependsOn"),
        ({"requests": [{"id": "1", "method": "POST", "url": "/users", "body": {}}]}, "Content-Type"),
    ],
)
def test_batch_validation(body: object, fragment: str) -> None:
    with pytest.raises(GraphError) as info:
        batch.validate(body)
    assert info.value.status == 400 and fragment in info.value.message
