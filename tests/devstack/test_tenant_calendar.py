"""Recurring events: series masters expand into occurrences for calendarView windows (pure, no servers)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msgraph.generated.models.event import Event

from devstack.tenant import TenantSizes, build_tenant
from devstack.tenant.recurrence import occurrences
from tests.devstack.test_tenant_fidelity import problems

Record = dict[str, Any]
YEAR_START = datetime(2024, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)


def master(pattern: dict[str, Any], range_: dict[str, Any], start: str = "2026-01-05T09:30:00") -> Record:
    end = (datetime.fromisoformat(start) + timedelta(minutes=30)).isoformat()
    return {"id": "AAMkAGI2TG93AAA=", "type": "seriesMaster", "subject": "Standup",
            "start": {"dateTime": start + ".0000000", "timeZone": "UTC"},
            "end": {"dateTime": end + ".0000000", "timeZone": "UTC"},
            "recurrence": {"pattern": pattern, "range": range_}}


def starts(records: list[Record]) -> list[str]:
    return [r["start"]["dateTime"][:16] for r in records]


def test_weekly_numbered_series() -> None:
    found = occurrences(master({"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                               {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 3}),
                        YEAR_START, YEAR_END)
    assert starts(found) == ["2026-01-05T09:30", "2026-01-12T09:30", "2026-01-19T09:30"]
    assert {r["type"] for r in found} == {"occurrence"}
    assert all(r["seriesMasterId"] == "AAMkAGI2TG93AAA=" and r["recurrence"] is None for r in found)
    assert found[1]["originalStart"] == "2026-01-12T09:30:00Z"
    assert len({r["id"] for r in found}) == 3


def test_weekly_two_days_every_other_week_until_an_end_date() -> None:
    found = occurrences(master({"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "thursday"]},
                               {"type": "endDate", "startDate": "2026-01-05", "endDate": "2026-02-01"}),
                        YEAR_START, YEAR_END)
    assert starts(found) == ["2026-01-05T09:30", "2026-01-08T09:30", "2026-01-19T09:30", "2026-01-22T09:30"]


def test_daily_and_monthly_series_are_clipped_to_the_window() -> None:
    daily = master({"type": "daily", "interval": 3}, {"type": "noEnd", "startDate": "2026-01-05"})
    window = occurrences(daily, datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 1, 20, tzinfo=UTC))
    assert starts(window) == ["2026-01-11T09:30", "2026-01-14T09:30", "2026-01-17T09:30"]
    monthly = master({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
                     {"type": "numbered", "startDate": "2026-01-15", "numberOfOccurrences": 2}, "2026-01-15T08:00:00")
    assert starts(occurrences(monthly, YEAR_START, YEAR_END)) == ["2026-01-15T08:00", "2026-02-15T08:00"]
    assert occurrences({**daily, "type": "singleInstance"}, YEAR_START, YEAR_END) == []


def test_calendar_view_expands_generated_series_and_keeps_single_events() -> None:
    tenant = build_tenant(11, TenantSizes.small())
    users = tenant.collection("users").page(0, 1000)  # type: ignore[union-attr]
    user, series = next((u["id"], e) for u in users
                        for e in tenant.collection("events", u["id"]).page(0, 1000)  # type: ignore[union-attr]
                        if e["type"] == "seriesMaster")
    view = tenant.calendar_view(user, "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
    assert view is not None
    mine = [e for e in view if e.get("seriesMasterId") == series["id"]]
    assert len(mine) == series["recurrence"]["range"]["numberOfOccurrences"]
    times = [datetime.fromisoformat(e["start"]["dateTime"][:19]) for e in mine]
    gaps = {b - a for a, b in itertools.pairwise(times)}
    assert gaps == {timedelta(days=7)}
    assert not any(e["type"] == "seriesMaster" for e in view)
    singles = [e for e in tenant.collection("events", user).page(0, 1000)  # type: ignore[union-attr]
               if e["type"] == "singleInstance"]
    assert {e["id"] for e in singles} <= {e["id"] for e in view}
    assert [e["start"]["dateTime"] for e in view] == sorted(e["start"]["dateTime"] for e in view)
    for record in mine[:3]:
        assert problems(Event, record) == []
    assert tenant.calendar_view(user, "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z") == []
    assert tenant.calendar_view("00000000-0000-0000-0000-000000000000", "2020-01-01T00:00:00Z",
                                "2030-01-01T00:00:00Z") is None
    again = tenant.calendar_view(user, "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
    assert again == view


@pytest.mark.parametrize("bad", [{"type": "relativeYearly"}, {"type": None}])
def test_unsupported_patterns_expand_to_nothing(bad: dict[str, Any]) -> None:
    assert occurrences(master(bad, {"type": "noEnd", "startDate": "2026-01-05"}), YEAR_START, YEAR_END) == []
