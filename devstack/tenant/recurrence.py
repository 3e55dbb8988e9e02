"""Expands a series master event into its occurrences, as calendarView presents a recurring meeting.

Pure: (master record, window) -> occurrence records. Supports the patterns the generator and typical tests use
(daily, weekly with daysOfWeek, absoluteMonthly; ranges numbered, endDate, noEnd); occurrences carry
`type: "occurrence"`, `seriesMasterId`, `originalStart`, no `recurrence`, and an id derived from the master's.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

Record = dict[str, Any]
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_OCCURRENCES = 1000


def _moment(value: dict[str, Any]) -> datetime:
    """A dateTimeTimeZone in UTC (the generator writes UTC; other zones are treated as UTC too)."""
    return datetime.fromisoformat(value["dateTime"][:19]).replace(tzinfo=UTC)


def _local7(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + ".0000000"


def _dates(recurrence: dict[str, Any], first: date) -> Iterator[date]:
    pattern, rng = recurrence["pattern"], recurrence["range"]
    kind = pattern.get("type")
    interval = max(1, int(pattern.get("interval") or 1))
    start = date.fromisoformat(rng.get("startDate") or first.isoformat())
    end = date.fromisoformat(rng["endDate"]) if rng.get("type") == "endDate" and rng.get("endDate") else None
    limit = int(rng.get("numberOfOccurrences") or 0) if rng.get("type") == "numbered" else MAX_OCCURRENCES
    limit = min(limit or MAX_OCCURRENCES, MAX_OCCURRENCES)
    days = {DAYS.index(d) for d in pattern.get("daysOfWeek") or [] if d in DAYS} or {start.weekday()}
    produced = 0
    day = start
    week0 = start - timedelta(days=start.weekday())
    while produced < limit and (end is None or day <= end) and day <= start + timedelta(days=366 * 5):
        if kind == "daily":
            hit = (day - start).days % interval == 0
        elif kind == "weekly":
            hit = day.weekday() in days and ((day - week0).days // 7) % interval == 0
        elif kind == "absoluteMonthly":
            months = (day.year - start.year) * 12 + day.month - start.month
            hit = day.day == int(pattern.get("dayOfMonth") or start.day) and months % interval == 0
        else:
            return
        if hit:
            produced += 1
            yield day
        day += timedelta(days=1)


def occurrence_id(master_id: str, day: date) -> str:
    raw = base64.b64decode(master_id)
    return base64.b64encode(raw + b"\x10" + day.strftime("%Y%m%d").encode("ascii") + b"\x00").decode("ascii")


def occurrences(master: Record, window_start: datetime, window_end: datetime) -> list[Record]:
    """The master's occurrences overlapping [window_start, window_end), oldest first."""
    recurrence = master.get("recurrence")
    if not recurrence or master.get("type") != "seriesMaster":
        return []
    first = _moment(master["start"])
    duration = _moment(master["end"]) - first
    found = []
    for day in _dates(recurrence, first.date()):
        start = datetime.combine(day, first.timetz())
        end = start + duration
        if start >= window_end:
            break
        if end <= window_start:
            continue
        record = copy.deepcopy(master)
        record.update({
            "id": occurrence_id(master["id"], day),
            "type": "occurrence",
            "seriesMasterId": master["id"],
            "recurrence": None,
            "originalStart": start.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "start": {"dateTime": _local7(start), "timeZone": master["start"].get("timeZone", "UTC")},
            "end": {"dateTime": _local7(end), "timeZone": master["end"].get("timeZone", "UTC")},
        })
        found.append(record)
    return found
