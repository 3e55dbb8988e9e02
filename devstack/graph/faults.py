"""Deterministic fault decisions: a pure function of the seed, the request and how often that URL was seen.

Keying on the URL's occurrence number (not on global arrival order) keeps a rerun's faults identical even when
concurrent requests interleave differently, and lets a client's retry of the same URL get a fresh draw.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from devstack.graph.settings import FaultSettings


@dataclass(frozen=True, slots=True)
class FaultDecision:
    delay_seconds: float = 0.0
    status: int | None = None  # 503 or 504
    retry_after: int | None = None  # seconds, only with 503
    drop: bool = False  # close the connection before answering
    truncate: bool = False  # announce the full Content-Length, send half, close
    empty_page: bool = False  # serve a list page with no items but a nextLink to the same position
    malformed: bool = False  # a complete HTTP answer whose JSON body is cut in half (a broken proxy or backend)

    @property
    def any(self) -> bool:
        return bool(self.delay_seconds or self.status or self.drop or self.truncate or self.empty_page
                    or self.malformed)


NO_FAULT = FaultDecision()


def applies(settings: FaultSettings, path: str) -> bool:
    return settings.active() and path.lower().startswith(settings.path_prefix.lower())


def decide(settings: FaultSettings, method: str, url: str, occurrence: int) -> FaultDecision:
    """`url` is the request target below /v1.0 (path and query); `occurrence` counts from 0 per URL."""
    digest = hashlib.sha256(f"{settings.seed}|{method}|{url}|{occurrence}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    # Always draw every variable in the same order so one knob never shifts another's outcomes.
    tail, error, error_kind, retry, drop, truncate, empty = (rng.random() for _ in range(7))
    delay = settings.latency_ms / 1000.0
    if tail < settings.tail_rate:
        delay += settings.tail_ms / 1000.0 * (1.0 + rng.random())
    if drop < settings.drop_rate:
        return FaultDecision(delay, drop=True)
    if error < settings.error_rate:
        status = 503 if error_kind < 0.5 else 504
        retry_after = 1 + int(retry * 3) if status == 503 and retry < settings.retry_after_rate else None
        return FaultDecision(delay, status=status, retry_after=retry_after)
    if truncate < settings.truncate_rate:
        return FaultDecision(delay, truncate=True)
    malformed = rng.random()  # drawn last, so adding it left every earlier knob's outcomes unchanged
    return FaultDecision(delay, empty_page=empty < settings.empty_page_rate,
                         malformed=malformed < settings.malformed_rate)
