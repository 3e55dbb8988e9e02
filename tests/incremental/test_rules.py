"""Pure incremental rules: change records, membership changes, time slices, overlap de-duplication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import delta, windows

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_change_records() -> None:
    assert delta.change_record({"id": "u1", "displayName": "A", "manager@delta": []}) == {
        "id": "u1", "displayName": "A", "_change": "upsert"}
    assert delta.change_record({"id": "u1", "@removed": {"reason": "changed"}}) == {
        "id": "u1", "_change": "deleted", "_removed_reason": "changed"}
    assert delta.change_record({"id": "d1", "name": "x", "deleted": {"state": "deleted"}}) == {
        "id": "d1", "_change": "deleted", "_removed_reason": "deleted"}
    assert delta.change_record({"id": "g1", "members@delta": [{"id": "u"}]}) is None
    assert delta.change_record({"displayName": "no id"}) is None


_KEYS = st.sampled_from(["id", "@odata.type", "displayName", "manager@delta", "members@delta", "@removed",
                          "x@deltaLink", "mail", "@delta"]) | st.text(max_size=8)


@given(st.dictionaries(_KEYS, st.none() | st.integers() | st.text(max_size=4), max_size=6),
       st.none() | st.text(max_size=4))
def test_change_record_drops_exactly_the_annotations(record: dict[str, object], rid: str | None) -> None:
    """The per-record fast path keeps what a key-by-key filter keeps: everything but `@removed` and `...@delta`."""
    if rid is not None:
        record = {**record, "id": rid}
    record.pop("@removed", None)  # a removal is a deletion record, covered above
    out = delta.change_record(record)
    if not isinstance(record.get("id"), str):
        assert out is None
        return
    kept = {k: v for k, v in record.items() if not k.endswith("@delta")}
    if not set(kept) - {"id", "@odata.type"}:
        assert out is None
    else:
        assert out == {**kept, "_change": "upsert"}


def test_member_changes() -> None:
    entry = {"id": "g", "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "a"},
                                          {"id": "b", "@removed": {"reason": "deleted"}}, "junk"]}
    assert delta.member_changes(entry) == [
        {"@odata.type": "#microsoft.graph.user", "id": "a", "_change": "upsert"},
        {"id": "b", "_change": "deleted", "_removed_reason": "deleted"}]


def test_fingerprint_follows_the_query() -> None:
    a = delta.query_fingerprint({"select": ["id", "displayName"], "stream": "users"})
    assert a == delta.query_fingerprint({"stream": "users", "select": ["id", "displayName"]})
    assert a != delta.query_fingerprint({"stream": "users", "select": ["id"]})


def test_calendar_window_is_stable_within_a_year() -> None:
    assert delta.calendar_window("2026-03-01T00:00:00Z", None, None) == \
        delta.calendar_window("2026-11-30T23:00:00+00:00", None, None)
    with pytest.raises(ValueError, match="date_window"):
        delta.calendar_window("2026-03-01T00:00:00Z", T0, T0)


def test_slices_cover_the_range_without_gaps() -> None:
    cut = windows.slices(T0, T0 + timedelta(days=2, hours=5))
    assert cut[0] == (T0, T0 + timedelta(days=1)) and cut[-1][1] == T0 + timedelta(days=2, hours=5)
    assert all(a[1] == b[0] for a, b in pairwise(cut))
    assert windows.slices(None, T0) == [(None, T0)]
    assert windows.slices(T0, T0) == []


def test_read_range() -> None:
    now = T0 + timedelta(days=10)
    assert windows.read_range(None, None, None, now) == (None, now)
    assert windows.read_range(T0, None, None, now) == (T0 - windows.OVERLAP, now)
    assert windows.read_range(T0, T0, T0 + timedelta(days=1), now) == (T0, T0 + timedelta(days=1))


def test_overlap_dedup_keeps_only_the_edge() -> None:
    dedup = windows.EdgeDedup.load({"old": "2026-03-01T00:30:00.1234567Z"})
    fresh = dedup.fresh([{"id": "old", "t": "2026-03-01T00:30:00Z"}, {"id": "new", "t": "2026-03-01T02:00:00Z"},
                         {"id": "new", "t": "2026-03-01T02:00:00Z"}, {"id": "ancient", "t": "2026-02-01T00:00:00Z"}],
                        "t")
    assert [r["id"] for r in fresh] == ["new", "ancient"]
    assert set(dedup.edge(T0 + timedelta(hours=3))) == {"old", "new"}
    assert windows.parse_time("2026-03-01T00:30:00.1234567Z") == T0 + timedelta(minutes=30, microseconds=123456)


def test_calendar_events_outside_the_window() -> None:
    low, high = T0, T0 + timedelta(days=30)

    def event(start: str, end: str, tz: str = "UTC") -> dict[str, object]:
        return {"start": {"dateTime": start, "timeZone": tz}, "end": {"dateTime": end, "timeZone": tz}}

    assert delta.outside_window(event("2026-02-01T10:00:00.0000000", "2026-02-01T11:00:00.0000000"), low, high)
    assert delta.outside_window(event("2026-03-31T00:00:00.0000000", "2026-03-31T01:00:00.0000000"), low, high)
    assert not delta.outside_window(event("2026-02-28T23:00:00.0000000", "2026-03-01T01:00:00.0000000"), low, high)
    assert not delta.outside_window(event("2026-02-01T10:00:00", "2026-02-01T11:00:00", "Pacific Standard Time"),
                                    low, high)
    assert not delta.outside_window({"subject": "no times"}, low, high)


def test_overlap_dedup_remembers_only_what_the_next_overlap_can_see() -> None:
    """A first run reads months of logs in one slice: only the ids inside the next overlap may stay in memory."""
    dedup = windows.EdgeDedup.load(None)
    high = T0 + timedelta(days=30)
    old = [{"id": f"old{i}", "t": windows.iso(T0 + timedelta(minutes=i))} for i in range(1000)]
    recent = [{"id": f"new{i}", "t": windows.iso(high - timedelta(minutes=i + 1))} for i in range(5)]
    fresh = dedup.fresh(old + recent, "t", remember_from=high - windows.OVERLAP)
    assert len(fresh) == 1005
    assert set(dedup.seen) == {f"new{i}" for i in range(5)}
    assert dedup.fresh(recent, "t", remember_from=high - windows.OVERLAP) == []


def test_default_folder_is_the_unlisted_parent() -> None:
    """Graph's `/contactFolders` lists the default folder's children only; their parent is the default folder."""
    children = [{"id": "a", "parentFolderId": "D"}, {"id": "b", "parentFolderId": "D"},
                {"id": "c", "parentFolderId": "a"}, {"id": "x"}]
    assert delta.default_folder_ids(children) == ["D"]
    assert delta.default_folder_ids([{"id": "i1", "parentFolderId": "D"}]) == ["D"]  # a contact of /contacts
    assert delta.default_folder_ids([]) == []
    plan = delta.plan_for("contacts")
    assert plan is not None and plan.default_folder_path == "/users/{parent}/contacts"
