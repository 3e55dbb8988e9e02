"""Pacing of tenant-scoped Graph workloads BEFORE Graph answers 429: each request spends units of a grant booked
from the scope's documented budget (see `budget`), so a burst of partitions never overshoots the limit and
several worker processes that book from one shared ledger stay within it together.

No I/O here: where grants come from is a `GrantSource` (an in-process ledger, or the Blob document of
`budget_blob`); clock and sleep are injected so the pacing is unit-testable on a virtual clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from shared.graph.budget import Grant, Ledger, ScopeBudget, book, directory_cost, paused, scope_budget

GovernorMode = Literal["shared", "local", "off"]
TenantSize = Literal["S", "M", "L"]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class GrantSource(Protocol):
    async def book(self, key: str, holder: str, want: float, budget: ScopeBudget) -> Grant | None:
        """A grant of up to `want` units (None: nothing fits within one window; ask again later)."""

    async def pause(self, key: str, until: float) -> None:
        """Every holder's next booking of `key` starts no earlier than `until` (a Retry-After seen)."""


class LocalSource:
    """One process's own ledgers: pacing without coordination (and the fallback when Blob is unreachable)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self.ledgers: dict[str, Ledger] = {}

    async def book(self, key: str, holder: str, want: float, budget: ScopeBudget) -> Grant | None:
        ledger, grant = book(self.ledgers.get(key, Ledger()), now=self._clock(), holder=holder, want=want,
                             budget=budget)
        self.ledgers[key] = ledger
        return grant

    async def pause(self, key: str, until: float) -> None:
        self.ledgers[key] = paused(self.ledgers.get(key, Ledger()), until)


@dataclass(slots=True)
class ScopeStats:
    bookings: int = 0
    admitted: int = 0
    units: float = 0.0
    throttled: int = 0


class ScopeGovernor:
    """Admits requests of one (tenant, scope) from the current grant; books the next grant when it is spent.

    The grant size grows like TCP slow start (twice the last one when it was used up, at least what is queued),
    capped at the budget's slice, so a lone partition books small grants and a burst books few large ones.
    On a 429 the budget this process books against halves (and recovers by a tenth per quiet window).
    """

    def __init__(self, key: str, budget: ScopeBudget, source: GrantSource, holder: str, *, clock: Clock,
                 sleep: Sleep) -> None:
        self.key = key
        self.budget = budget
        self._source = source
        self._holder = holder
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._balance = 0.0
        self._start = 0.0
        self._deadline = 0.0
        self._granted = 0.0
        self._queued = 0.0
        self._factor = 1.0
        self._last_throttle = float("-inf")
        self.stats = ScopeStats()

    def _effective(self) -> ScopeBudget:
        if self._factor < 1.0 and self._clock() - self._last_throttle > self.budget.window:
            self._factor = min(1.0, self._factor + 0.1)
            self._last_throttle = self._clock()
        units = max(1.0, self.budget.units * self._factor)
        return ScopeBudget(self.budget.scope, units, self.budget.window)

    def _want(self, cost: float, budget: ScopeBudget) -> float:
        used_up = self._granted > 0 and self._balance < cost
        grow = 2 * self._granted if used_up else self._granted
        return max(cost, min(max(budget.max_slice, cost), max(self._queued, grow)))

    async def acquire(self, cost: float) -> None:
        cost = min(cost, self.budget.units)
        self._queued += cost
        try:
            async with self._lock:
                while True:
                    now = self._clock()
                    if now < self._start:
                        await self._sleep(self._start - now)
                        continue
                    # A grant smaller than one request (a tiny budget after 429s) admits it on credit.
                    if now <= self._deadline and self._granted > 0 and self._balance + 1e-9 >= min(cost, self._granted):
                        self._balance -= cost
                        self.stats.admitted += 1
                        self.stats.units += cost
                        return
                    budget = self._effective()
                    grant = await self._source.book(self.key, self._holder, self._want(cost, budget), budget)
                    if grant is None:  # nothing fits for several windows: one window later is soon enough
                        await self._sleep(self.budget.window)
                        continue
                    self.stats.bookings += 1
                    debt = min(0.0, self._balance) if now <= self._deadline + self.budget.window else 0.0
                    self._balance = grant.units + debt
                    self._granted = grant.units
                    self._start = grant.start
                    self._deadline = grant.start + self.budget.hold
        finally:
            self._queued -= cost

    def settle(self, estimated: float, actual: float) -> None:
        """Graph's own charge (x-ms-resource-unit) corrects the estimate: more becomes a debt on the next grant.
        Less is not refunded: the request may have been admitted from an earlier grant than the current one."""
        if actual > estimated:
            self._balance -= actual - estimated

    async def throttled(self, retry_after: float | None) -> None:
        """Graph disagreed: stop spending this grant, book against half the budget, and pause every holder."""
        self.stats.throttled += 1
        now = self._clock()
        self._balance = 0.0
        self._granted = 0.0
        if now - self._last_throttle > self.budget.window / 2:  # one halving per burst of 429s, not per 429
            self._factor = max(0.1, self._factor / 2)
        self._last_throttle = now
        await self._source.pause(self.key, now + (retry_after if retry_after is not None else self.budget.hold))


class Governor:
    """The scopes of one worker process: which workloads are paced, their budgets, their grant source."""

    def __init__(self, source: GrantSource, *, holder: str, tier: TenantSize = "S", share: float = 1.0,
                 app_id: str = "", clock: Clock = time.time, sleep: Sleep = asyncio.sleep) -> None:
        self.source = source
        self.holder = holder
        self.tier = tier
        self.share = share
        self.app_id = app_id
        self._clock = clock
        self._sleep = sleep
        self.scopes: dict[tuple[str, str], ScopeGovernor | None] = {}

    def scope(self, tenant_id: str, workload: str) -> ScopeGovernor | None:
        """None for workloads whose limits are per resource (Outlook mailboxes, Teams, files): not shared."""
        found_key = (tenant_id, workload)
        if found_key in self.scopes:
            return self.scopes[found_key]
        budget = scope_budget(workload, tier=self.tier, share=self.share)
        governed = None if budget is None else ScopeGovernor(
            ledger_key(self.app_id, tenant_id, workload), budget, self.source, self.holder, clock=self._clock,
            sleep=self._sleep)
        self.scopes[found_key] = governed
        return governed

    async def acquire(self, tenant_id: str, workload: str, path: str, query: str) -> float:
        """Wait until the request may be sent; returns the units it was charged (0 when the scope is not paced)."""
        governed = self.scope(tenant_id, workload)
        if governed is None:
            return 0.0
        cost = float(directory_cost(path, query)) if workload == "directory" else 1.0
        await governed.acquire(cost)
        return cost

    def settle(self, tenant_id: str, workload: str, estimated: float, header: str | None) -> None:
        governed = self.scope(tenant_id, workload)
        if governed is None or not estimated or header is None:
            return
        try:
            actual = float(header)
        except ValueError:
            return
        governed.settle(estimated, actual)

    async def throttled(self, tenant_id: str, workload: str, retry_after: float | None) -> None:
        governed = self.scope(tenant_id, workload)
        if governed is not None:
            await governed.throttled(retry_after)


def ledger_key(app_id: str, tenant_id: str, workload: str) -> str:
    """Graph throttles per app and tenant: instances of one app reading one tenant share one ledger."""
    return f"{app_id or 'app'}/{tenant_id}/{workload}"
