"""The shared budget ledger on real Blob (Azurite): several instances booking one scope at once through their own
SDK clients, an instance that dies holding grants, a damaged document, and Blob being unreachable."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from shared.graph.budget import Grant, Ledger, ScopeBudget
from shared.graph.budget_blob import LEDGER_FOLDER, BlobGrantSource
from shared.graph.governor import ScopeGovernor
from tests.conftest import RunningStack

CONTAINER = "governor-tests"


@pytest.fixture()
async def services(stack: RunningStack) -> AsyncIterator[list[BlobServiceClient]]:
    """One SDK client per simulated Function instance (no shared connection pool or cache)."""
    clients = [BlobServiceClient.from_connection_string(stack.env.storage_connection_string,
                                                        connection_verify=stack.env.ca_bundle) for _ in range(4)]
    yield clients
    for client in clients:
        await client.close()


def containers(services: list[BlobServiceClient]) -> list[ContainerClient]:
    return [s.get_container_client(CONTAINER) for s in services]


async def stored(container: ContainerClient, key: str) -> Ledger:
    data = await (await container.get_blob_client(f"{LEDGER_FOLDER}/{key}.json").download_blob()).readall()
    return Ledger.from_json(orjson.loads(data))


def worst_window(grants: list[Grant], window: float) -> float:
    return max(sum(g.units for g in grants if g.start <= w + window and g.end >= w)
               for w in [g.start - window for g in grants] + [g.end for g in grants])


async def test_instances_racing_for_one_ledger_never_overbook(services: list[BlobServiceClient]) -> None:
    key = f"app/{uuid.uuid4()}/directory"
    budget = ScopeBudget("directory", 40, 30.0)  # a long window: every grant of the test shares it
    sources = [BlobGrantSource(c) for c in containers(services)]

    async def instance(i: int) -> list[Grant]:
        got = []
        for _ in range(6):
            grant = await sources[i].book(key, f"instance-{i}", 3, budget)
            if grant is not None:
                got.append(grant)
        return got

    results = await asyncio.gather(*(instance(i) for i in range(4)))
    granted = [g for got in results for g in got]
    conflicts = sum(s.stats.conflicts for s in sources)
    assert conflicts > 0, "the instances never raced: the test proves nothing"
    assert sum(s.stats.fallbacks for s in sources) == 0
    # 40 units, 3 each: 13 grants fit in the first window no matter who asked first; the others start later.
    first = min(g.start for g in granted)
    assert len([g for g in granted if g.start < first + budget.window]) == 13, "all that fits, not less nor more"
    assert worst_window(granted, budget.window) <= budget.units
    final = await stored(containers(services)[0], key)
    assert set(granted) <= set(final.grants), "a booking was lost: a write did not see an earlier one"


async def test_a_dead_instance_holds_its_grants_only_until_they_end(services: list[BlobServiceClient]) -> None:
    key = f"app/{uuid.uuid4()}/reports"
    budget = ScopeBudget("reports", 3, 1.0)
    first, second = containers(services)[:2]
    dying = BlobGrantSource(first)
    held = [g for _ in range(3) if (g := await dying.book(key, "dies", 1, budget)) is not None]
    assert len(held) == 3  # the whole budget, then the instance dies
    await services[0].close()  # the instance is gone; nobody cleans up after it
    survivor = ScopeGovernor(key, budget, BlobGrantSource(second), "survivor", clock=time.time, sleep=asyncio.sleep)
    before = time.time()
    for _ in range(3):
        await survivor.acquire(1)
    ledger = await stored(second, key)
    mine = [g for g in ledger.grants if g.holder == "survivor"]
    assert len(mine) == 3 and min(g.start for g in mine) >= min(g.end for g in held) + budget.window
    assert worst_window(held + mine, budget.window) <= budget.units
    assert time.time() - before < 10 * budget.window  # it did get going again


async def test_a_damaged_ledger_is_replaced_after_one_cautious_window(services: list[BlobServiceClient]) -> None:
    key = f"app/{uuid.uuid4()}/policy"
    container = containers(services)[0]
    await container.get_blob_client(f"{LEDGER_FOLDER}/{key}.json").upload_blob(b"{not json", overwrite=True)
    budget = ScopeBudget("policy", 1, 1.0)
    now = time.time()
    grant = await BlobGrantSource(container).book(key, "me", 1, budget)
    assert grant is not None and grant.start >= now + budget.window
    assert (await stored(container, key)).grants == (grant,)


async def test_unreachable_blob_falls_back_to_a_conservative_local_share() -> None:
    dead = BlobServiceClient("https://127.0.0.1:9/devstoreaccount1", credential=None,
                             connection_timeout=1, read_timeout=1)
    try:
        source = BlobGrantSource(dead.get_container_client(CONTAINER))
        budget = ScopeBudget("directory", 100, 10.0)
        grant = await source.book("app/t/directory", "me", 100, budget)
        assert grant is not None and grant.units <= budget.units / 2
        assert source.stats.fallbacks == 1
        again = await source.book("app/t/directory", "me", 100, budget)  # no Blob retry for a while
        assert source.stats.fallbacks == 1 and source.stats.reads == 1
        assert again is None or again.start >= grant.start
    finally:
        await dead.close()
