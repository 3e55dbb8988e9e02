"""When a failed partition is worth another run: pure rules of the orchestrators' re-run passes.

The engine already retries each Graph request (GRAPH_MAX_ATTEMPTS) and the durable retry re-runs a crashed
activity; a re-run pass is for what outlasts both, e.g. a throttling window or a Key Vault outage longer than the
in-request backoff. It waits on a durable timer (no worker is held) and runs only partitions whose result says a
later attempt can succeed (`retryable`), so a missing permission is never asked again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from shared.contracts import PartitionResult

DEFAULT_RERUNS = 2
DEFAULT_DELAY_SECONDS = 60.0


def rerunnable(result: PartitionResult) -> bool:
    return result["status"] == "failed" and bool(result.get("retryable", False))


def passes(limits: Mapping[str, Any]) -> int:
    return max(0, int(limits.get("reruns", DEFAULT_RERUNS)))


def delay(limits: Mapping[str, Any], attempt: int) -> timedelta:
    """Exponential backoff between passes: the configured delay, then twice that, and so on."""
    base = float(limits.get("rerun_delay_seconds", DEFAULT_DELAY_SECONDS))
    return timedelta(seconds=max(0.0, base) * (2 ** max(0, attempt)))
