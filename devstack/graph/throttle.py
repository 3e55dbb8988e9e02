"""Graph's documented throttling limits as a pure model with an injectable clock (TL-2026 figures).

- identity & access (directory): token bucket of resource units per app+tenant, size-tiered (S 3,500 / M 5,000 /
  L 8,000 RU per 10 s), plus 150,000 RU per 20 s per app; request cost from the cost table with modifiers;
- identity reports (directoryAudits, signIns): 5 requests per 10 s per app per tenant;
- conditional access: 1 request per second per tenant, answered without Retry-After;
- Outlook: 4 concurrent requests and 10,000 requests per 10 minutes per app+mailbox;
- Teams: per-resource and per-app-per-tenant requests per second by request class;
- global: 130,000 requests per 10 s per app.

`scale` shrinks every window (faster refill, quicker tests); `budget_scale` shrinks budgets (easier to hit).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from devstack.graph.settings import ThrottleSettings

TIER_RU_PER_10S = {"S": 3500, "M": 5000, "L": 8000}
APP_RU_PER_20S = 150_000
REPORTS_PER_10S = 5
CA_PER_1S = 1
OUTLOOK_CONCURRENCY = 4
OUTLOOK_PER_10MIN = 10_000
GLOBAL_PER_10S = 130_000

# Teams request class -> (requests per second per resource, per app per tenant).
TEAMS_LIMITS: dict[str, tuple[float | None, float]] = {
    "teams": (4, 30),
    "channels": (4, 60),
    "team_members": (4, 60),
    "user_chats": (1, 20),
    "chat_messages": (1, 20),
    "chat_members": (1, 30),
    "all_messages": (None, 200),
}

GENERIC_CODE = "TooManyRequests"
GENERIC_MESSAGE = "Please retry again later."
OUTLOOK_CODE = "ApplicationThrottled"
OUTLOOK_CONCURRENCY_MESSAGE = "Application is over its MailboxConcurrency limit."
OUTLOOK_RATE_MESSAGE = "Application is over its MailboxRequestRate limit."


@dataclass(frozen=True, slots=True)
class ThrottleRequest:
    app_id: str
    tenant_id: str
    family: Literal["directory", "outlook", "teams", "drive", "reports", "ca"]
    cost: int = 1  # directory resource units
    mailbox: str | None = None  # Outlook: user id of the mailbox
    teams_class: str | None = None
    resource_id: str | None = None  # Teams: team/chat/user the request targets


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    scope: str = ""  # counter name of the limit that decided (e.g. "directory.tenant_application")
    retry_after: float | None = None
    code: str = GENERIC_CODE
    message: str = GENERIC_MESSAGE
    throttle_scope_header: str | None = None
    throttle_info_header: str | None = None
    resource_units: int | None = None  # x-ms-resource-unit (directory)
    limit_percentage: float | None = None  # x-ms-throttle-limit-percentage (directory, above 0.8)


ALLOW = Decision(True)


def tier_for_users(user_count: int) -> str:
    if user_count < 50:
        return "S"
    if user_count <= 500:
        return "M"
    return "L"


class _Bucket:
    __slots__ = ("capacity", "stamp", "tokens")

    def __init__(self, capacity: float, now: float) -> None:
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now


class ThrottleModel:
    def __init__(
        self,
        settings: ThrottleSettings,
        *,
        tenant_users: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._tenant_users = tenant_users
        self._clock = clock
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self._windows: dict[tuple[str, ...], deque[float]] = {}
        self._in_flight: dict[tuple[str, str], int] = {}
        self.max_in_flight: dict[str, int] = {}

    def reset(self) -> None:
        self._buckets.clear()
        self._windows.clear()
        self.max_in_flight.clear()

    # --- primitives -------------------------------------------------------------------------------------------
    def _budget(self, value: float) -> float:
        return max(1.0, value * self.settings.budget_scale)

    def _window(self, seconds: float) -> float:
        return seconds * self.settings.scale

    def _take_bucket(self, key: tuple[str, ...], capacity: float, window: float, cost: float) -> float | None:
        """None when admitted, else seconds until `cost` units are available."""
        now = self._clock()
        capacity = self._budget(capacity)
        window = self._window(window)
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != capacity:
            bucket = self._buckets[key] = _Bucket(capacity, now)
        rate = capacity / window
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens + 1e-9 >= cost:
            bucket.tokens = max(0.0, bucket.tokens - cost)
            return None
        return (min(cost, capacity) - bucket.tokens) / rate

    def _take_window(self, key: tuple[str, ...], budget: float, window: float) -> float | None:
        """Sliding-window request counter; None when admitted, else seconds until the oldest entry leaves."""
        now = self._clock()
        budget = self._budget(budget)
        window = self._window(window)
        stamps = self._windows.get(key)
        if stamps is None:
            stamps = self._windows[key] = deque()
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if len(stamps) >= budget:
            return stamps[0] + window - now
        stamps.append(now)
        return None

    # --- the model --------------------------------------------------------------------------------------------
    def admit(self, req: ThrottleRequest) -> Decision:
        """Decide one request; an admitted Outlook request must be paired with `release`."""
        if not self.settings.enabled:
            if req.family == "outlook" and req.mailbox:
                self._enter(req)
            return Decision(True, resource_units=req.cost if req.family == "directory" else None)
        wait = self._take_window(("global", req.app_id), GLOBAL_PER_10S * self.settings.global_budget_scale, 10)
        if wait is not None:
            return Decision(False, "global", wait)
        if req.family == "directory":
            return self._directory(req)
        if req.family == "reports":
            wait = self._take_window(("reports", req.app_id, req.tenant_id), REPORTS_PER_10S, 10)
            return ALLOW if wait is None else Decision(False, "reports", wait)
        if req.family == "ca":
            wait = self._take_window(("ca", req.tenant_id), CA_PER_1S, 1)
            return ALLOW if wait is None else Decision(False, "conditional_access", None)
        if req.family == "teams":
            return self._teams(req)
        if req.family == "outlook":
            return self._outlook(req)
        return ALLOW

    def _directory(self, req: ThrottleRequest) -> Decision:
        tier = self.settings.tenant_tier or tier_for_users(self._tenant_users())
        wait = self._take_bucket(("ru", req.app_id, req.tenant_id), TIER_RU_PER_10S[tier], 10, req.cost)
        scope = "Tenant_Application"
        if wait is None:
            wait = self._take_bucket(("ru-app", req.app_id), APP_RU_PER_20S, 20, req.cost)
            scope = "Application"
            if wait is None:
                bucket = self._buckets[("ru", req.app_id, req.tenant_id)]
                used = 1.0 - bucket.tokens / bucket.capacity
                # Graph adds x-ms-throttle-limit-percentage once more than 80% of the budget is consumed.
                return Decision(True, resource_units=req.cost, limit_percentage=used if used > 0.8 else None)
        return Decision(
            False,
            f"directory.{scope.lower()}",
            wait,
            throttle_scope_header=f"{scope}/Read/{req.app_id}/{req.tenant_id}",
            throttle_info_header="ResourceUnitLimitExceeded",
            resource_units=req.cost,
        )

    def _teams(self, req: ThrottleRequest) -> Decision:
        per_resource, per_app_tenant = TEAMS_LIMITS.get(req.teams_class or "", (1, 30))
        if per_resource is not None and req.resource_id is not None:
            key = ("teams-res", req.app_id, req.teams_class or "", req.resource_id)
            wait = self._take_window(key, per_resource, 1)
            if wait is not None:
                return Decision(False, "teams.resource", wait)
        wait = self._take_window(("teams-app", req.app_id, req.tenant_id, req.teams_class or ""), per_app_tenant, 1)
        return ALLOW if wait is None else Decision(False, "teams.app_tenant", wait)

    def _outlook(self, req: ThrottleRequest) -> Decision:
        mailbox = req.mailbox or ""
        if self._in_flight.get((req.app_id, mailbox), 0) >= OUTLOOK_CONCURRENCY:
            # Real Exchange suggests a short wait; the concurrency slot frees when any in-flight request ends.
            return Decision(False, "outlook.concurrency", self._window(1.0), OUTLOOK_CODE, OUTLOOK_CONCURRENCY_MESSAGE)
        wait = self._take_window(("outlook", req.app_id, mailbox), OUTLOOK_PER_10MIN, 600)
        if wait is not None:
            return Decision(False, "outlook.rate", wait, OUTLOOK_CODE, OUTLOOK_RATE_MESSAGE)
        self._enter(req)
        return ALLOW

    def _enter(self, req: ThrottleRequest) -> None:
        key = (req.app_id, req.mailbox or "")
        current = self._in_flight.get(key, 0) + 1
        self._in_flight[key] = current
        if current > self.max_in_flight.get(req.mailbox or "", 0):
            self.max_in_flight[req.mailbox or ""] = current

    def release(self, req: ThrottleRequest) -> None:
        key = (req.app_id, req.mailbox or "")
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)


def directory_cost(base: int, *, select: bool, top: int | None, expand: bool) -> int:
    """The cost table's modifiers: $select -1, $top < 20 -1, $expand +1; never below 1."""
    cost = base - (1 if select else 0) - (1 if top is not None and top < 20 else 0) + (1 if expand else 0)
    return max(1, cost)


def format_retry_after(seconds: float, scale: float) -> str:
    """Whole seconds as Graph sends them; with a scaled clock, decimals (Graph also sends those in batches)."""
    if scale >= 1:
        return str(max(1, math.ceil(seconds)))
    return f"{max(seconds, 0.001):.3f}"
