"""The adaptive limiter (pure asyncio): in-flight cap, halving on throttling, additive growth on success."""

from __future__ import annotations

import asyncio

from shared.graph.limiter import AdaptiveLimiter


async def test_slots_cap_concurrency_at_the_limit() -> None:
    limiter = AdaptiveLimiter(maximum=3)
    peak = 0
    release = asyncio.Event()

    async def work() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            await release.wait()

    tasks = [asyncio.create_task(work()) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert limiter.in_flight == 3
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 3 and limiter.in_flight == 0


async def test_throttling_halves_and_success_grows_back() -> None:
    limiter = AdaptiveLimiter(maximum=16)
    limiter.in_flight = 16
    limiter.throttled()
    assert limiter.limit == 8
    limiter.in_flight = 2  # halving starts from what is really in flight, not from a stale large limit
    limiter.throttled()
    assert limiter.limit == 1 and limiter.lowest == 1
    limiter.throttled()
    assert limiter.limit == 1  # never below the minimum
    for _ in range(3):
        await limiter.succeeded()
    assert 2.5 <= limiter.limit <= 3
    for _ in range(1000):
        await limiter.succeeded()
    assert limiter.limit == 16


async def test_a_lower_limit_holds_new_requests_back() -> None:
    limiter = AdaptiveLimiter(maximum=4)
    limiter.in_flight = 2
    limiter.throttled()  # limit 1 while 2 are still in flight
    entered = asyncio.Event()

    async def newcomer() -> None:
        async with limiter.slot():
            entered.set()

    task = asyncio.create_task(newcomer())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not entered.is_set()
    async with limiter._changed:
        limiter.in_flight = 0
        limiter._changed.notify_all()
    await asyncio.wait_for(task, 1)
    assert entered.is_set()
