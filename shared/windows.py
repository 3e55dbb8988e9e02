"""Pure time-window rules for the append-only log streams (directory audits, sign-ins).

Graph has no delta for logs, and records arrive late (Entra documents minutes to hours of latency), so each run
reads from `watermark - OVERLAP` to the run's start. Ids seen inside the overlap at the last run's edge are
remembered, so a record read twice is written once; a late record stamped inside the overlap is caught exactly
once. Long ranges are read in slices so one failure keeps the slices already done.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

OVERLAP = timedelta(hours=3)
SLICE = timedelta(days=1)

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: str) -> datetime:
    """ISO 8601 with Graph's 7-digit fractions (`...00.1234567Z`) as an aware UTC datetime."""
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def slices(start: datetime | None, end: datetime, size: timedelta = SLICE) -> list[tuple[datetime | None, datetime]]:
    """[start, end) cut into consecutive half-open slices of at most `size`; one open slice when start is None."""
    if size <= timedelta(0):
        raise ValueError("slice size must be positive")
    if start is None:
        return [(None, end)]
    out: list[tuple[datetime | None, datetime]] = []
    low = start
    while low < end:
        high = min(low + size, end)
        out.append((low, high))
        low = high
    return out


def read_range(watermark: datetime | None, configured_start: datetime | None, configured_end: datetime | None,
               run_started: datetime, overlap: timedelta = OVERLAP) -> tuple[datetime | None, datetime]:
    """Where this run reads: from the watermark minus the overlap (first run: the configured start, or the
    beginning), to the configured end or the run's start, whichever is earlier."""
    end = min(configured_end, run_started) if configured_end else run_started
    if watermark is None:
        return configured_start, end
    start = watermark - overlap
    if configured_start is not None:
        start = max(start, configured_start)
    return min(start, end), end


def _at_or_after(stamp: str, floor: datetime) -> bool:
    """Unparseable or missing stamps count as recent, so such ids stay de-duplicated."""
    try:
        return not stamp or parse_time(stamp) >= floor
    except ValueError:
        return True


@dataclass(slots=True)
class EdgeDedup:
    """Ids already written whose timestamp lies inside the overlap of the current watermark."""

    seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, edge: Mapping[str, str] | None) -> EdgeDedup:
        return cls(dict(edge or {}))

    def fresh(self, records: Iterable[dict[str, Any]], column: str,
              remember_from: datetime | None = None) -> list[dict[str, Any]]:
        """Records not written before. Only those stamped at or after `remember_from` (the next overlap's floor) are
        remembered: older ones can never be read again, and remembering them would grow memory with the partition."""
        out = []
        for record in records:
            rid = record.get("id")
            if not isinstance(rid, str):
                continue
            if rid in self.seen:
                continue
            stamp = record.get(column)
            stamp = stamp if isinstance(stamp, str) else ""
            if remember_from is None or _at_or_after(stamp, remember_from):
                self.seen[rid] = stamp
            out.append(record)
        return out

    def edge(self, watermark: datetime, overlap: timedelta = OVERLAP) -> dict[str, str]:
        """What the checkpoint keeps: the ids a next run's overlap can see again."""
        floor = watermark - overlap
        kept: dict[str, str] = {}
        for rid, stamp in self.seen.items():
            try:
                if stamp and parse_time(stamp) >= floor:
                    kept[rid] = stamp
            except ValueError:
                continue
        return kept
