"""The pacing governor and its booking ledger, pure: budgets, the cost table, the window guarantee under any
interleaving of bookings, and admission on a virtual clock (no servers)."""

from __future__ import annotations

import asyncio
import random

import pytest

from shared.graph.budget import (
    Grant,
    Ledger,
    ScopeBudget,
    book,
    directory_cost,
    paused,
    peak_in_window,
    scope_budget,
)
from shared.graph.governor import Governor, LocalSource, ScopeGovernor, ledger_key


def worst_window(grants: list[Grant], window: float) -> float:
    """The fullest window over all grants (brute force: a window's load peaks where a grant enters it)."""
    return max(sum(g.units for g in grants if g.start <= w + window and g.end >= w)
               for w in [g.start - window for g in grants] + [g.end for g in grants])


class VirtualClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def test_documented_budgets_per_workload() -> None:
    assert scope_budget("directory", tier="S") == ScopeBudget("directory", 3500, 10)
    assert scope_budget("directory", tier="L", share=0.5) == ScopeBudget("directory", 4000, 10)
    assert scope_budget("reports") == ScopeBudget("reports", 5, 10)
    assert scope_budget("policy") == ScopeBudget("policy", 1, 1)
    assert scope_budget("policy", share=0.5) == ScopeBudget("policy", 1, 1)  # Graph always admits one
    assert scope_budget("outlook") is None and scope_budget("teams") is None and scope_budget("files") is None


@pytest.mark.parametrize(("path", "query", "cost"), [
    ("/v1.0/users", "$top=999", 2),
    ("/v1.0/users", "$select=id,displayName&$top=999", 1),
    ("/v1.0/users/delta", "$deltatoken=x", 2),
    ("/v1.0/groups/abc/members", "$top=999", 3),
    ("/v1.0/groups/abc/members", "$select=id&$top=999", 2),
    ("/v1.0/groups/abc/transitiveMembers", "", 5),
    ("/v1.0/groups/abc/transitiveMembers", "$top=10&$select=id", 3),
    ("/v1.0/groups", "$expand=members", 2),
    ("/v1.0/directoryRoles", "", 1),
    ("/v1.0/directoryRoles", "$select=id", 1),  # never below 1
    ("/v1.0/subscribedSkus", "", 3),
    ("/v1.0/users/u1/memberOf", "", 2),
])
def test_directory_cost_follows_the_cost_table(path: str, query: str, cost: int) -> None:
    assert directory_cost(path, query) == cost


def test_a_full_window_books_the_next_grant_in_the_future() -> None:
    budget = ScopeBudget("reports", 5, 10)
    ledger = Ledger()
    starts = []
    for _ in range(12):
        ledger, grant = book(ledger, now=100.0, holder="a", want=1, budget=budget, horizon=100)
        assert grant is not None
        starts.append(grant.start)
    assert starts[:5] == [100.0] * 5
    assert min(starts[5:]) > 100.0 + budget.hold + budget.window  # after the first five left every window
    assert worst_window(list(ledger.grants), budget.window) <= budget.units
    _, none = book(ledger, now=100.0, holder="a", want=1, budget=budget, horizon=budget.window)
    assert none is None  # nothing fits within one window
    _, later = book(ledger, now=100.0, holder="a", want=1, budget=budget)
    assert later is not None and later.start >= max(starts)  # by default a start further ahead: sleep, not poll


@pytest.mark.parametrize("seed", range(25))
def test_no_window_exceeds_the_budget_under_any_interleaving(seed: int) -> None:
    """Several holders book at random moments and sizes from one ledger (as instances through Blob would)."""
    rng = random.Random(seed)
    budget = ScopeBudget("directory", rng.choice([5, 70, 3500]), rng.choice([1.0, 10.0]))
    ledger = Ledger()
    granted: list[Grant] = []
    now = 0.0
    for _ in range(300):
        now += rng.expovariate(20.0 / budget.window)
        want = rng.uniform(1, budget.max_slice * 1.5)
        ledger, grant = book(ledger, now=now, holder=f"h{rng.randrange(4)}", want=want, budget=budget)
        if grant is not None:
            assert grant.start >= now and grant.units <= budget.units
            granted.append(grant)
        assert len(ledger.grants) < 60  # old grants are dropped: the Blob document stays small
    assert len(granted) > 20
    assert worst_window(granted, budget.window) <= budget.units + 1e-6
    # Spending each grant at its very end is the worst case the emulator could see: still within the budget.
    spent = [(g.end, g.units) for g in granted]
    assert peak_in_window(spent, budget.window) <= budget.units + 1e-6


def test_a_pause_and_a_damaged_document_delay_bookings() -> None:
    budget = ScopeBudget("directory", 100, 10)
    _, grant = book(paused(Ledger(), 130.0), now=100.0, holder="a", want=10, budget=budget, horizon=60)
    assert grant is not None and grant.start == 130.0
    damaged = Ledger.from_json({"grants": "not a list"})
    _, grant = book(damaged, now=100.0, holder="a", want=10, budget=budget)
    assert grant is not None and grant.start == 110.0  # unknown history: wait one window before spending
    assert Ledger.from_json(Ledger((Grant("a", 1, 2, 3),), 5.0).to_json()) == Ledger((Grant("a", 1, 2, 3),), 5.0)


def test_peak_in_window_counts_a_sliding_window() -> None:
    events = [(0.0, 1.0), (5.0, 1.0), (9.9, 1.0), (10.0, 1.0), (19.95, 1.0)]
    assert peak_in_window(events, 10.0) == 3  # (0, 10] holds 5.0, 9.9 and 10.0
    assert peak_in_window([], 10.0) == 0


async def test_a_burst_of_partitions_is_paced_to_the_budget() -> None:
    clock = VirtualClock()
    budget = ScopeBudget("directory", 70, 10)
    governor = ScopeGovernor("k", budget, LocalSource(clock), "me", clock=clock, sleep=clock.sleep)
    admitted: list[tuple[float, float]] = []

    async def partition(cost: float, requests: int) -> None:
        for _ in range(requests):
            await governor.acquire(cost)
            admitted.append((clock.now, cost))

    started = clock.now
    await asyncio.gather(*(partition(cost, 15) for cost in (1, 2, 3, 5) * 5))
    elapsed = clock.now - started
    total = sum(c for _, c in admitted)
    assert len(admitted) == 300 and total == 825
    assert peak_in_window(admitted, budget.window) <= budget.units
    assert total / elapsed >= 0.6 * budget.units / budget.window  # not needlessly slow either
    assert governor.stats.bookings < len(admitted) / 4  # grants, not one booking per request


async def test_a_429_pauses_the_scope_and_halves_what_this_process_books() -> None:
    clock = VirtualClock()
    source = LocalSource(clock)
    budget = ScopeBudget("reports", 8, 10)
    governor = ScopeGovernor("k", budget, source, "me", clock=clock, sleep=clock.sleep)
    await governor.acquire(1)
    await governor.throttled(7.0)
    assert source.ledgers["k"].paused_until == clock.now + 7.0
    before = clock.now
    await governor.acquire(1)
    assert clock.now >= before + 7.0  # the next request waited for Retry-After
    assert source.ledgers["k"].grants[-1].units <= 4  # half the budget
    assert governor.stats.throttled == 1


async def test_the_governor_paces_only_tenant_scoped_workloads() -> None:
    clock = VirtualClock()
    governor = Governor(LocalSource(clock), holder="me", tier="M", share=1.0, app_id="app", clock=clock,
                        sleep=clock.sleep)
    assert await governor.acquire("t", "outlook", "/v1.0/users/u/messages", "") == 0.0
    assert await governor.acquire("t", "directory", "/v1.0/groups/g/members", "$top=999") == 3.0
    assert await governor.acquire("t", "reports", "/v1.0/auditLogs/signIns", "") == 1.0
    scope = governor.scope("t", "directory")
    assert scope is not None and scope.budget.units == 5000 and scope.key == ledger_key("app", "t", "directory")
    governor.settle("t", "directory", 3.0, "5")  # Graph charged more than the table says: a debt
    assert scope.stats.admitted == 1


@pytest.mark.parametrize(("mode", "source"), [("off", None), ("local", "LocalSource"), ("shared", "BlobGrantSource")])
async def test_the_setting_chooses_the_grant_source(mode: str, source: str | None) -> None:
    from azure.storage.blob.aio import BlobServiceClient

    from shared.config import load_settings
    from shared.graph.budget_blob import make_governor

    settings = load_settings({
        "GRAPH_TENANT_IDS": "00000000-0000-0000-0000-000000000001",
        "GRAPH_CLIENT_ID": "00000000-0000-0000-0000-0000000000a1",
        "KEY_VAULT_URL": "https://vault.example", "OUTPUT_ACCOUNT_URL": "https://lake.blob.core.windows.net",
        "GRAPH_GOVERNOR": mode, "GRAPH_TENANT_SIZE": "L", "GRAPH_BUDGET_SHARE": "0.5"})
    async with BlobServiceClient(settings.output_account_url) as service:
        governor = make_governor(settings, service)
    if source is None:
        assert governor is None
        return
    assert governor is not None and type(governor.source).__name__ == source
    scope = governor.scope("00000000-0000-0000-0000-000000000001", "directory")
    assert scope is not None and scope.budget.units == 4000
    assert scope.key.startswith("00000000-0000-0000-0000-0000000000a1/")  # per app: Graph throttles per app


async def test_graph_charging_more_than_estimated_is_paid_from_the_next_grant() -> None:
    clock = VirtualClock()
    booked: list[Grant] = []

    class Recording(LocalSource):
        async def book(self, key: str, holder: str, want: float, budget: ScopeBudget) -> Grant | None:
            grant = await super().book(key, holder, want, budget)
            booked.extend([grant] if grant is not None else [])
            return grant

    governor = ScopeGovernor("k", ScopeBudget("directory", 40, 10), Recording(clock), "me", clock=clock,
                             sleep=clock.sleep)
    await governor.acquire(2)
    governor.settle(2, 12)  # the table said 2, Graph charged 12: a debt of 10
    governor.settle(5, 1)  # less is not refunded
    for _ in range(20):
        await governor.acquire(2)
    assert sum(g.units for g in booked) >= 2 + 10 + 20 * 2  # the ledger ends up holding what Graph charged
