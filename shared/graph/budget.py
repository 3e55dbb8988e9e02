"""Graph's documented tenant-scoped budgets and the booking ledger that splits one between worker processes.

Pure: no I/O, no clock. The ledger is the document the instances share (in Blob, see `budget_blob`); this module
decides what one booking may take, so the rules are unit-testable without servers.

Why bookings (grants of units for a short spend interval) instead of per-request accounting: every Function
instance would otherwise write Blob for every Graph request. A grant lets an instance spend a slice of the
window's budget locally; the ledger guarantees that the grants overlapping ANY window of the scope's length sum to
at most the budget, so the combined rate cannot exceed the documented limit whoever spends when inside their
grants. A crashed instance needs no clean-up: its grants simply end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

# TL-2026 figures (notes/graph-api.md §3.2).
DIRECTORY_RU_PER_10S = {"S": 3500.0, "M": 5000.0, "L": 8000.0}
REPORTS_PER_10S = 5.0
CONDITIONAL_ACCESS_PER_1S = 1.0

# Base GET costs of the identity cost table; every other identity GET costs 1. Keys are lower-cased path shapes
# with `{}` for ids ("/users/{}/memberof" also covers me/memberOf, whose cost applies to users/{id}).
_DIRECTORY_BASE_COST: dict[tuple[str, ...], int] = {
    ("users",): 2,
    ("users", "delta"): 2,
    ("users", "{}"): 2,
    ("applications",): 2,
    ("applications", "delta"): 2,
    ("groups", "{}", "members"): 3,
    ("groups", "{}", "transitivemembers"): 5,
    ("serviceprincipals", "{}", "approleassignments"): 2,
    ("oauth2permissiongrants",): 2,
    ("subscribedskus",): 3,
    ("users", "{}", "memberof"): 2,
}
_LITERALS = frozenset(s for shape in _DIRECTORY_BASE_COST for s in shape if s != "{}")


@dataclass(frozen=True, slots=True)
class ScopeBudget:
    """One throttling scope shared by every instance of the app: `units` per sliding `window` seconds."""

    scope: str
    units: float
    window: float

    @property
    def hold(self) -> float:
        """How long a grant may be spent: a tenth of the window keeps unspent leftovers short-lived."""
        return self.window / 10

    @property
    def slack(self) -> float:
        """Added to every grant's end: a request admitted at the deadline reaches Graph later (connection set-up,
        a busy event loop, the network), and two requests' delays differ by up to this much without overlap."""
        return max(0.5, self.window / 10)

    @property
    def max_slice(self) -> float:
        """The largest single grant: a quarter of the window, so several instances can share one window."""
        return max(1.0, self.units / 4)


def scope_budget(workload: str, *, tier: str = "S", share: float = 1.0) -> ScopeBudget | None:
    """The tenant-scoped budget of a workload, or None when its limits are per resource (Outlook, Teams, files).

    `share` is the part of the documented budget this app may use (other apps of the tenant share the
    conditional-access limit, for one); never less than one request per window, as Graph always admits one.
    """
    if workload == "directory":
        units, window = DIRECTORY_RU_PER_10S[tier], 10.0
    elif workload == "reports":
        units, window = REPORTS_PER_10S, 10.0
    elif workload == "policy":
        units, window = CONDITIONAL_ACCESS_PER_1S, 1.0
    else:
        return None
    return ScopeBudget(workload, max(1.0, math.floor(units * share * 1000) / 1000), window)


def directory_cost(path: str, query: str) -> int:
    """Resource units Graph charges for one identity GET: the cost table plus its modifiers ($select -1,
    $top < 20 -1, $expand +1, never below 1). `path` as sent, e.g. /v1.0/groups/x/members."""
    segments = [s for s in path.split("/") if s]
    if segments and segments[0].lower() in ("v1.0", "beta"):
        segments = segments[1:]
    shape = tuple(s.lower() if s.lower() in _LITERALS else "{}" for s in segments)
    cost = _DIRECTORY_BASE_COST.get(shape, 1)
    names = {k.lower(): v for k, v in parse_qsl(query, keep_blank_values=True)}
    if "$select" in names:
        cost -= 1
    top = names.get("$top")
    if top is not None and top.isdigit() and int(top) < 20:
        cost -= 1
    if "$expand" in names:
        cost += 1
    return max(1, cost)


@dataclass(frozen=True, slots=True)
class Grant:
    """`units` the holder may send between `start` and `start + hold`; `end` adds the slack (times: epoch s)."""

    holder: str
    start: float
    end: float
    units: float

    def to_json(self) -> list[Any]:
        return [self.holder, self.start, self.end, self.units]

    @classmethod
    def from_json(cls, row: Any) -> Grant:
        holder, start, end, units = row
        return cls(str(holder), float(start), float(end), float(units))


@dataclass(frozen=True, slots=True)
class Ledger:
    grants: tuple[Grant, ...] = ()
    paused_until: float = 0.0
    """A 429 with Retry-After seen by any instance pauses every instance's next booking until then."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "grants": [g.to_json() for g in self.grants], "paused_until": self.paused_until,
                **self.extra}

    @classmethod
    def from_json(cls, data: Any) -> Ledger:
        """A damaged document is read as an empty ledger plus a pause of one window (see `book`): never a crash."""
        if not isinstance(data, dict) or not isinstance(data.get("grants"), list):
            return cls(extra={"damaged": True})
        try:
            grants = tuple(Grant.from_json(row) for row in data["grants"])
            paused = float(data.get("paused_until") or 0.0)
        except (TypeError, ValueError):
            return cls(extra={"damaged": True})
        return cls(grants, paused)

    def holders(self, now: float, window: float) -> set[str]:
        """Instances that held a grant during the last window (for the fallback share)."""
        return {g.holder for g in self.grants if g.end >= now - window}


def _load(grants: Iterable[Grant], lo: float, hi: float) -> float:
    """Units of grants overlapping [lo, hi]."""
    return sum(g.units for g in grants if g.start <= hi and g.end >= lo)


def _worst_window(grants: tuple[Grant, ...], start: float, end: float, window: float) -> float:
    """The fullest window of length `window` that overlaps [start, end]. A window's load only rises where a grant
    enters it, so checking the left-most window and every window that starts as a grant's start enters suffices."""
    candidates = [start - window]
    candidates += [g.start - window for g in grants if start - window <= g.start - window <= end]
    return max(_load(grants, w, w + window) for w in candidates)


def book(ledger: Ledger, *, now: float, holder: str, want: float, budget: ScopeBudget,
         horizon: float | None = None) -> tuple[Ledger, Grant | None]:
    """Book up to `want` units at the earliest start >= now (and after any pause) that keeps every window within
    the budget; None when nothing fits before `now + horizon` (default: three windows, so that a busy scope books
    a start in the future and its holder sleeps until then instead of polling the ledger).

    Safe under any interleaving of bookings: for any window, the last grant booked into it was checked against
    every earlier grant overlapping that window, so their sum fits. Grants ending more than a window before
    `now` can no longer share a window with a new grant and are dropped, which keeps the document small.
    """
    window = budget.window
    horizon = 3 * window if horizon is None else horizon
    damaged = bool(ledger.extra.get("damaged"))
    grants = tuple(g for g in ledger.grants if g.end >= now - 2 * window)
    units = min(max(want, 0.0), budget.units) or 1.0
    earliest = max(now, ledger.paused_until, now + window if damaged else now)
    # The fit only improves when an older grant stops sharing windows with the new one: at `end + window`.
    candidates = sorted({earliest, *(g.end + window + 1e-3 for g in grants if g.end + window > earliest)})
    for start in candidates:
        if start > now + horizon:
            break
        end = start + budget.hold + budget.slack
        if _worst_window(grants, start, end, window) + units <= budget.units + 1e-9:
            grant = Grant(holder, start, end, units)
            kept = tuple(g for g in grants if g.end >= now - window)
            return replace(ledger, grants=(*kept, grant), extra={}), grant
    return replace(ledger, grants=grants, extra={}), None


def paused(ledger: Ledger, until: float) -> Ledger:
    return replace(ledger, paused_until=max(ledger.paused_until, until))


def peak_in_window(events: Iterable[tuple[float, float]], window: float) -> float:
    """The largest sum of `(time, units)` events inside any window of `window` seconds (the proof's measure)."""
    ordered = sorted(events)
    best = 0.0
    total = 0.0
    left = 0
    for t, units in ordered:
        total += units
        while ordered[left][0] <= t - window:
            total -= ordered[left][1]
            left += 1
        best = max(best, total)
    return best
