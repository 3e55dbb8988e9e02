"""The fastest a sync could possibly finish under Graph's documented throttling and the emulator's latency.

No client, however clever, beats two things: every throttling scope can serve only its budget per window (after
the initial burst a full bucket or an empty window allows), and a partition's pages form a chain, because each
nextLink is only known once the previous page arrived. The bound is the larger of the two; a benchmark divides
its measured wall time by it. Pure: the race feeds in the counts, nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Graph's documented limits (TL-2026), the same figures the emulator's throttle model enforces.
DIRECTORY_RU_PER_10S = {"S": 3500, "M": 5000, "L": 8000}
REPORTS_PER_10S = 5
CA_PER_1S = 1
OUTLOOK_PER_10MIN = 10_000
GLOBAL_PER_10S = 130_000


@dataclass(frozen=True, slots=True)
class Latency:
    """Per-request latency as the emulator draws it: `base_s` always, plus a tail of 1-2x `tail_s` on a share."""

    base_s: float
    tail_rate: float = 0.0
    tail_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("base_s", "tail_rate", "tail_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or value != value:
                raise ValueError(f"Latency.{name} must be a non-negative number, got {value!r}")
        if self.tail_rate > 1:
            raise ValueError(f"Latency.tail_rate is a share between 0 and 1, got {self.tail_rate!r}")

    @property
    def mean_s(self) -> float:
        """Expected latency: the tail adds tail_s * U(1, 2), whose mean is 1.5 * tail_s."""
        return self.base_s + self.tail_rate * self.tail_s * 1.5


@dataclass(frozen=True, slots=True)
class ScopeLoad:
    """Work one throttling scope must admit: `units` (requests, or resource units for the directory) against a
    budget of `budget` units per `window_s` seconds."""

    scope: str
    units: float
    budget: float
    window_s: float

    def __post_init__(self) -> None:
        if self.units < 0:
            raise ValueError(f"ScopeLoad({self.scope}).units must be >= 0, got {self.units!r}")
        if self.budget <= 0 or self.window_s <= 0:
            raise ValueError(f"ScopeLoad({self.scope}): budget and window_s must be > 0 "
                             f"(got budget={self.budget!r}, window_s={self.window_s!r})")

    @property
    def rate(self) -> float:
        return self.budget / self.window_s

    @property
    def naive_seconds(self) -> float:
        """Units divided by the sustained rate (the textbook figure, which ignores the initial burst)."""
        return self.units / self.rate

    @property
    def seconds(self) -> float:
        """Least time to admit every unit: the first `budget` units pass at once (full bucket / empty window),
        the rest at the sustained rate. For a sliding window this is also a lower bound: U requests need at least
        ceil(U / budget) - 1 whole windows, and that is >= (U - budget) / rate."""
        return max(0.0, (self.units - self.budget) / self.rate)


@dataclass(frozen=True, slots=True)
class Bound:
    seconds: float
    rate_seconds: float  # slowest scope's admission time
    rate_scope: str
    chain_seconds: float  # the critical path of dependent page requests
    chain_pages: int
    scopes: tuple[ScopeLoad, ...]

    @property
    def limited_by(self) -> str:
        return f"scope {self.rate_scope}" if self.rate_seconds > self.chain_seconds else "page chain latency"


def chain_seconds(pages: int, latency: Latency) -> float:
    return pages * latency.mean_s


def critical_path_pages(parent_listing_pages: int, child_chains: Iterable[int]) -> int:
    """Pages on the longest dependent path: a child partition cannot start before the listing page that names
    its parent arrived (at best the first one), and the listing itself is a chain too."""
    longest_child = max(child_chains, default=0)
    if parent_listing_pages <= 0:
        return longest_child
    return max(parent_listing_pages, 1 + longest_child)


def outlook_loads(requests_per_mailbox: Mapping[str, int]) -> list[ScopeLoad]:
    """One scope per app+mailbox (10,000 requests per 10 minutes); only the busiest matters for the bound."""
    if not requests_per_mailbox:
        return []
    mailbox, busiest = max(requests_per_mailbox.items(), key=lambda kv: kv[1])
    return [ScopeLoad(f"outlook.mailbox[{mailbox}]", busiest, OUTLOOK_PER_10MIN, 600.0)]


def directory_load(resource_units: float, tier: str) -> ScopeLoad:
    try:
        budget = DIRECTORY_RU_PER_10S[tier]
    except KeyError:
        raise ValueError(f"tenant tier {tier!r} unknown; use one of {sorted(DIRECTORY_RU_PER_10S)}") from None
    return ScopeLoad("directory.tenant_application", resource_units, budget, 10.0)


def reports_load(requests: int) -> ScopeLoad:
    return ScopeLoad("reports", requests, REPORTS_PER_10S, 10.0)


def conditional_access_load(requests: int) -> ScopeLoad:
    return ScopeLoad("conditional_access", requests, CA_PER_1S, 1.0)


def global_load(requests: int) -> ScopeLoad:
    return ScopeLoad("global", requests, GLOBAL_PER_10S, 10.0)


def lower_bound(scopes: Iterable[ScopeLoad], critical_pages: int, latency: Latency) -> Bound:
    loads = tuple(scopes)
    slowest = max(loads, key=lambda s: s.seconds, default=None)
    rate = slowest.seconds if slowest else 0.0
    chain = chain_seconds(critical_pages, latency)
    return Bound(max(rate, chain), rate, slowest.scope if slowest else "-", chain, critical_pages, loads)


def pages_for(records: int, page_size: int) -> int:
    """Pages a partition of `records` takes: an empty partition still costs its one (empty) page."""
    if page_size <= 0:
        raise ValueError(f"page_size must be > 0, got {page_size!r}")
    return max(1, math.ceil(records / page_size))
