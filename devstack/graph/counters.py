"""Request counters the admin API exposes so tests and benchmarks can see what the emulator saw."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any


class Counters:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.batches = 0
        self.batch_items = 0
        self.by_endpoint: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.throttled_by_scope: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        # (monotonic time, endpoint, status, resource units charged): peak rates over any window (bench.multiworker)
        self.timeline: deque[tuple[float, str, int, float]] = deque(maxlen=50_000)

    def record(self, endpoint: str, status: int, throttle_scope: str | None, *, batch_item: bool = False,
               units: str | None = None, at: float | None = None) -> None:
        """`at`: when the request arrived (monotonic), which is when the throttle model judged it."""
        self.requests += 1
        self.timeline.append((time.monotonic() if at is None else at, endpoint, status, float(units or 0)))
        if batch_item:
            self.batch_items += 1
        self.by_endpoint[endpoint] += 1
        self.by_status[status] += 1
        if status == 429:
            self.throttled_by_scope[throttle_scope or "unknown"] += 1

    def snapshot(self, max_in_flight: dict[str, int]) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "batches": self.batches,
            "batch_items": self.batch_items,
            "throttled": sum(self.throttled_by_scope.values()),
            "throttled_by_scope": dict(self.throttled_by_scope),
            "by_endpoint": dict(self.by_endpoint),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "faults": dict(self.faults),
            "outlook_max_concurrent": dict(max_in_flight),
        }
