"""The pure throttling model, driven by a fake clock: every documented limit trips and recovers."""

from __future__ import annotations

import pytest

from devstack.graph.settings import ThrottleSettings
from devstack.graph.throttle import (
    ThrottleModel,
    ThrottleRequest,
    directory_cost,
    format_retry_after,
    tier_for_users,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def model(**kw: object) -> tuple[ThrottleModel, Clock]:
    clock = Clock()
    users = int(kw.pop("users", 10))  # type: ignore[call-overload]
    return ThrottleModel(ThrottleSettings(**kw), tenant_users=lambda: users, clock=clock), clock  # type: ignore[arg-type]


def test_tiers_follow_tenant_size() -> None:
    assert [tier_for_users(n) for n in (0, 49, 50, 500, 501)] == ["S", "S", "M", "M", "L"]


@pytest.mark.parametrize(("users", "budget"), [(10, 3500), (100, 5000), (1000, 8000)])
def test_directory_bucket_by_tier_then_refills(users: int, budget: int) -> None:
    m, clock = model(users=users)
    req = ThrottleRequest("app", "tid", "directory", cost=2)
    admitted = 0
    while m.admit(req).allowed:
        admitted += 1
    assert admitted == budget // 2
    denied = m.admit(req)
    assert denied.scope == "directory.tenant_application"
    assert denied.throttle_scope_header == "Tenant_Application/Read/app/tid"
    assert denied.throttle_info_header == "ResourceUnitLimitExceeded"
    assert denied.retry_after is not None and 0 < denied.retry_after <= 10
    clock.now += denied.retry_after
    assert m.admit(req).allowed


def test_cost_modifiers() -> None:
    assert directory_cost(2, select=False, top=None, expand=False) == 2
    assert directory_cost(2, select=True, top=None, expand=False) == 1
    assert directory_cost(2, select=True, top=5, expand=False) == 1  # never below 1
    assert directory_cost(5, select=False, top=10, expand=True) == 5
    assert directory_cost(3, select=True, top=999, expand=False) == 2


def test_reports_five_per_ten_seconds_scaled() -> None:
    m, clock = model(scale=0.1)  # 10 s windows become 1 s
    req = ThrottleRequest("app", "tid", "reports")
    assert all(m.admit(req).allowed for _ in range(5))
    denied = m.admit(req)
    assert not denied.allowed and denied.scope == "reports"
    assert denied.retry_after == pytest.approx(1.0)
    clock.now += 1.0
    assert m.admit(req).allowed


def test_conditional_access_one_per_second_without_retry_after() -> None:
    m, clock = model()
    req = ThrottleRequest("app", "tid", "ca")
    assert m.admit(req).allowed
    denied = m.admit(req)
    assert not denied.allowed and denied.retry_after is None
    assert m.admit(ThrottleRequest("other-app", "tid", "ca")).allowed is False  # per tenant, all apps
    clock.now += 1.0
    assert m.admit(req).allowed


def test_outlook_four_concurrent_per_mailbox() -> None:
    m, _ = model()
    reqs = [ThrottleRequest("app", "tid", "outlook", mailbox="m1") for _ in range(5)]
    assert all(m.admit(r).allowed for r in reqs[:4])
    denied = m.admit(reqs[4])
    assert denied.code == "ApplicationThrottled"
    assert denied.message == "Application is over its MailboxConcurrency limit."
    assert m.admit(ThrottleRequest("app", "tid", "outlook", mailbox="m2")).allowed  # other mailbox unaffected
    m.release(reqs[0])
    assert m.admit(reqs[4]).allowed
    assert m.max_in_flight["m1"] == 4


def test_outlook_ten_thousand_per_ten_minutes() -> None:
    m, clock = model(budget_scale=0.001)  # 10 requests per window
    req = ThrottleRequest("app", "tid", "outlook", mailbox="m1")
    for _ in range(10):
        assert m.admit(req).allowed
        m.release(req)
    denied = m.admit(req)
    assert denied.scope == "outlook.rate" and denied.retry_after == pytest.approx(600)
    clock.now += 600
    assert m.admit(req).allowed


def test_teams_per_resource_and_per_app_tenant() -> None:
    m, clock = model()
    chat = ThrottleRequest("app", "tid", "teams", teams_class="chat_messages", resource_id="c1")
    assert m.admit(chat).allowed
    assert m.admit(chat).scope == "teams.resource"  # 1 rps per chat
    others = [ThrottleRequest("app", "tid", "teams", teams_class="chat_messages", resource_id=f"c{i}")
              for i in range(2, 40)]
    results = [m.admit(r) for r in others]
    assert sum(r.allowed for r in results) == 19  # 20 rps per app per tenant, one already used
    assert {r.scope for r in results if not r.allowed} == {"teams.app_tenant"}
    clock.now += 1.0
    assert m.admit(chat).allowed


def test_global_limit_and_switch_off() -> None:
    m, _ = model(budget_scale=0.0001)  # 13 requests per 10 s
    req = ThrottleRequest("app", "tid", "drive")
    assert sum(m.admit(req).allowed for _ in range(20)) == 13
    m.settings.enabled = False
    assert m.admit(req).allowed


def test_retry_after_formatting() -> None:
    assert format_retry_after(0.2, 1.0) == "1"
    assert format_retry_after(9.01, 1.0) == "10"
    assert format_retry_after(0.25, 0.1) == "0.250"
