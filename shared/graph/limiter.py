"""Adaptive concurrency per (tenant, workload): halve on throttling, grow back by one per window of successes.

Retry-After alone makes every throttled waiter wake at the same instant and collide again, burning attempts
(a thundering herd). Shrinking the number of requests in flight when Graph pushes back, and widening it again
as requests succeed (AIMD, like TCP congestion control), keeps throughput near what the tenant's budget allows
while each retry is likely to succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class AdaptiveLimiter:
    def __init__(self, maximum: int = 64, minimum: int = 1) -> None:
        self.maximum = maximum
        self.minimum = minimum
        self.limit = float(maximum)
        self.in_flight = 0
        self.lowest = maximum
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def slot(self, count: int = 1) -> AsyncIterator[None]:
        """`count` slots taken at once (a `$batch` whose items Graph runs in parallel holds one per item it runs
        concurrently); taking them one by one could deadlock two batches. A request wider than a limit that shrank
        meanwhile still goes once nothing else is in flight."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight + count <= int(self.limit) or self.in_flight == 0)
            self.in_flight += count
        try:
            yield
        finally:
            async with self._changed:
                self.in_flight -= count
                self._changed.notify_all()

    def throttled(self) -> None:
        """Multiplicative decrease: at most halve from the current in-flight level."""
        self.limit = max(float(self.minimum), min(self.limit, float(max(self.in_flight, 1))) / 2)
        self.lowest = min(self.lowest, int(self.limit))

    async def succeeded(self) -> None:
        """Additive increase: one more slot per `limit` successes."""
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            async with self._changed:
                self._changed.notify_all()
