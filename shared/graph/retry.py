"""How long to wait before the next attempt. Pure: the clock and the random source are passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: float seconds (Graph batches send 0.249) or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0
    return seconds


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    """A Retry-After longer than this is capped: better to retry early than to hold a worker for hours."""

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Wait before attempt `attempt + 1` (attempt counts from 1).

        Retry-After is honoured (never retried sooner) plus up to 20% jitter, so the waiters it released do not
        all collide again at the same instant; without it, capped exponential backoff with "equal jitter" keeps a
        floor so a burst of workers never retries at once with zero delay.
        """
        if retry_after is not None:
            wait = min(retry_after, self.max_retry_after)
            return wait + (rng.uniform(0, wait * 0.2) if rng is not None else random.uniform(0, wait * 0.2))
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** max(0, attempt - 1)))
        jitter = rng.uniform(0, ceiling / 2) if rng is not None else random.uniform(0, ceiling / 2)
        return ceiling / 2 + jitter

    def can_retry(self, attempt: int) -> bool:
        return attempt < self.max_attempts
