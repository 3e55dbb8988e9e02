"""`$batch`, throttling and fault injection over HTTPS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.devstack.test_graph_support import GraphHarness, running_harness

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
async def graph(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphHarness]:
    async with running_harness(Path(tmp_path_factory.mktemp("graph-limits"))) as harness:
        yield harness


@pytest.fixture()
async def clean(graph: GraphHarness) -> AsyncIterator[GraphHarness]:
    """Default limits, no faults and zeroed counters before and after each test."""
    neutral = {"throttle": {"enabled": True, "scale": 1.0, "budget_scale": 1.0},
               "faults": {"error_rate": 0, "drop_rate": 0, "truncate_rate": 0, "latency_ms": 0, "tail_rate": 0,
                          "empty_page_rate": 0, "path_prefix": "", "retry_after_rate": 0.5}}
    await graph.admin("PATCH", "/settings", neutral)
    await graph.admin("POST", "/throttle/reset")
    await graph.admin("POST", "/counters/reset")
    yield graph
    await graph.admin("PATCH", "/settings", neutral)
    await graph.admin("POST", "/throttle/reset")


async def batch(graph: GraphHarness, requests: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    reply = await graph.request("POST", "/$batch", body={"requests": requests})
    return reply.status, reply.json


def mail_user(graph: GraphHarness) -> str:
    return next(u for u in graph.ids("users") if graph.tenant.mailbox_state(u) == "ok")


# --- $batch --------------------------------------------------------------------------------------------------------
async def test_batch_mixed_items(clean: GraphHarness) -> None:
    graph = clean
    group = graph.ids("groups")[0]
    status, body = await batch(graph, [
        {"id": "1", "method": "GET", "url": "/users?$top=2&$select=id"},
        {"id": "2", "method": "GET", "url": f"groups/{group}/members?$top=1"},  # no leading slash
        {"id": "3", "method": "GET", "url": "/users/00000000-0000-0000-0000-00000000dead"},
        {"id": "4", "method": "GET", "url": "/users?$count=true&$top=1", "headers": {"ConsistencyLevel": "eventual"}},
    ])
    assert status == 200 and set(body) == {"responses"}
    by_id = {r["id"]: r for r in body["responses"]}
    assert {k: v["status"] for k, v in by_id.items()} == {"1": 200, "2": 200, "3": 404, "4": 200}
    assert by_id["1"]["body"]["@odata.nextLink"].startswith(f"{graph.base}/v1.0/users?")
    assert by_id["1"]["headers"]["Content-Type"].startswith("application/json")
    assert by_id["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert by_id["4"]["body"]["@odata.count"] == len(graph.ids("users"))
    # Order is shuffled, but reproducibly.
    _, again = await batch(graph, [
        {"id": "1", "method": "GET", "url": "/users?$top=2&$select=id"},
        {"id": "2", "method": "GET", "url": f"groups/{group}/members?$top=1"},
        {"id": "3", "method": "GET", "url": "/users/00000000-0000-0000-0000-00000000dead"},
        {"id": "4", "method": "GET", "url": "/users?$count=true&$top=1", "headers": {"ConsistencyLevel": "eventual"}},
    ])
    assert [r["id"] for r in again["responses"]] == [r["id"] for r in body["responses"]]
    counters = await graph.admin("GET", "/counters")
    assert counters["batches"] == 2 and counters["batch_items"] == 8


async def test_batch_envelope_errors(clean: GraphHarness) -> None:
    graph = clean
    too_many = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(21)]
    status, body = await batch(graph, too_many)
    assert status == 400 and body["error"]["code"] == "BadRequest"
    status, body = await batch(graph, [{"id": "a", "method": "GET", "url": "/users"},
                                       {"id": "A", "method": "GET", "url": "/groups"}])
    assert status == 400 and "duplicate" in body["error"]["message"]
    status, _ = await batch(graph, [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(20)])
    assert status == 200


async def test_batch_depends_on_gives_424(clean: GraphHarness) -> None:
    status, body = await batch(clean, [
        {"id": "1", "method": "GET", "url": "/groups/00000000-0000-0000-0000-00000000dead/members"},
        {"id": "2", "method": "GET", "url": "/users?$top=1", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/users?$top=1"},
        {"id": "4", "method": "GET", "url": "/groups?$top=1", "dependsOn": ["3"]},
    ])
    assert status == 200
    by_id = {r["id"]: r["status"] for r in body["responses"]}
    assert by_id == {"1": 404, "2": 424, "3": 200, "4": 200}


async def test_batch_items_are_throttled_on_their_own(clean: GraphHarness) -> None:
    graph = clean
    # Medium tenant (230 users): 5,000 RU per 10 s; a budget scale of 0.002 leaves 10 RU = five 2-RU user reads.
    await graph.admin("PATCH", "/settings", {"throttle": {"budget_scale": 0.002}})
    status, body = await batch(graph, [{"id": str(i), "method": "GET", "url": "/users?$top=50"} for i in range(8)])
    assert status == 200
    statuses = sorted(r["status"] for r in body["responses"])
    assert statuses == [200] * 5 + [429] * 3
    throttled = [r for r in body["responses"] if r["status"] == 429]
    for item in throttled:
        assert float(item["headers"]["Retry-After"]) > 0
        assert item["body"]["error"]["code"] == "TooManyRequests"
        assert item["headers"]["x-ms-throttle-scope"].startswith("Tenant_Application/Read/")
    counters = await graph.admin("GET", "/counters")
    assert counters["throttled_by_scope"] == {"directory.tenant_application": 3}


async def test_batch_runs_at_most_four_items_per_mailbox(clean: GraphHarness) -> None:
    graph = clean
    user = mail_user(graph)
    await graph.admin("PATCH", "/settings", {"faults": {"latency_ms": 150, "path_prefix": f"/users/{user}"}})
    status, body = await batch(graph, [{"id": str(i), "method": "GET", "url": f"/users/{user}/messages?$top=1"}
                                       for i in range(10)])
    assert status == 200 and all(r["status"] == 200 for r in body["responses"])
    counters = await graph.admin("GET", "/counters")
    assert counters["outlook_max_concurrent"][user.lower()] == 4


# --- throttling ----------------------------------------------------------------------------------------------------
async def test_directory_resource_units(clean: GraphHarness) -> None:
    graph = clean
    # 10 RU per 10 s refills 1 RU per second: the sixth 2-RU read in a row cannot fit on any realistic machine.
    await graph.admin("PATCH", "/settings", {"throttle": {"budget_scale": 0.002}})
    replies = [await graph.get("/users?$top=50") for _ in range(6)]
    assert [r.status for r in replies] == [200] * 5 + [429]
    assert "x-ms-throttle-limit-percentage" not in replies[0].headers  # only once over 80% of the budget
    assert float(replies[4].headers["x-ms-throttle-limit-percentage"]) > 0.8
    denied = replies[-1]
    assert denied.headers["x-ms-throttle-scope"] == (
        f"Tenant_Application/Read/11111111-2222-3333-4444-555555555555/{graph.tenant.tenant_id}")
    assert denied.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert denied.headers["x-ms-resource-unit"] == "2"
    error = denied.json["error"]
    assert (error["code"], error["message"]) == ("TooManyRequests", "Please retry again later.")
    assert error["innerError"]["code"] == "429" and error["innerError"]["status"] == "429"
    await asyncio.sleep(float(denied.headers["Retry-After"]))
    assert (await graph.get("/users?$top=50")).status == 200
    # $select makes a users read cost 1 RU: cheaper requests fit more often.
    assert (await graph.get("/users?$top=50&$select=id")).headers["x-ms-resource-unit"] == "1"


async def test_reports_five_per_window(clean: GraphHarness) -> None:
    replies = [await clean.get("/auditLogs/signIns?$top=1") for _ in range(7)]
    assert [r.status for r in replies] == [200] * 5 + [429] * 2
    assert "Retry-After" in replies[-1].headers


async def test_conditional_access_one_per_second_without_retry_after(clean: GraphHarness) -> None:
    first = await clean.get("/identity/conditionalAccess/policies")
    second = await clean.get("/identity/conditionalAccess/policies")
    assert first.status == 200 and second.status == 429
    assert "Retry-After" not in second.headers


async def test_outlook_concurrency(clean: GraphHarness) -> None:
    graph = clean
    user = mail_user(graph)
    await graph.admin("PATCH", "/settings", {"faults": {"latency_ms": 400, "path_prefix": f"/users/{user}"}})
    replies = await asyncio.gather(*(graph.get(f"/users/{user}/messages?$top=1") for _ in range(7)))
    statuses = sorted(r.status for r in replies)
    assert statuses == [200] * 4 + [429] * 3
    denied = next(r for r in replies if r.status == 429)
    assert denied.json == {"error": {"code": "ApplicationThrottled",
                                     "message": "Application is over its MailboxConcurrency limit."}}
    counters = await graph.admin("GET", "/counters")
    assert counters["throttled_by_scope"] == {"outlook.concurrency": 3}


async def test_teams_per_resource(clean: GraphHarness) -> None:
    graph = clean
    team = next(g["id"] for g in graph.records("groups") if "Team" in (g.get("resourceProvisioningOptions") or []))
    replies = await asyncio.gather(*(graph.get(f"/teams/{team}/channels") for _ in range(10)))
    statuses = [r.status for r in replies]
    assert statuses.count(200) >= 4 and statuses.count(429) >= 1  # 4 requests per second per team
    counters = await graph.admin("GET", "/counters")
    assert set(counters["throttled_by_scope"]) == {"teams.resource"}


async def test_throttling_switches_off(clean: GraphHarness) -> None:
    await clean.admin("PATCH", "/settings", {"throttle": {"enabled": False}})
    replies = [await clean.get("/identity/conditionalAccess/policies") for _ in range(4)]
    assert all(r.status == 200 for r in replies)


# --- faults --------------------------------------------------------------------------------------------------------
async def test_injected_503_and_504_scoped_to_a_path(clean: GraphHarness) -> None:
    graph = clean
    await graph.admin("PATCH", "/settings", {"faults": {"error_rate": 1.0, "retry_after_rate": 1.0,
                                                        "path_prefix": "/groups", "seed": 1}})
    replies = [await graph.get(f"/groups?$top={n}") for n in range(1, 13)]
    assert {r.status for r in replies} == {503, 504}
    for reply in replies:
        assert reply.json["error"]["code"] in ("serviceNotAvailable", "UnknownError")
        assert ("Retry-After" in reply.headers) == (reply.status == 503)
    assert (await graph.get("/users?$top=1")).status == 200
    counters = await graph.admin("GET", "/counters")
    assert counters["faults"].get("503", 0) + counters["faults"].get("504", 0) == 12


async def test_dropped_connection(clean: GraphHarness) -> None:
    await clean.admin("PATCH", "/settings", {"faults": {"drop_rate": 1.0, "path_prefix": "/users"}})
    with pytest.raises(aiohttp.ClientError):
        await clean.get("/users?$top=5")
    await clean.admin("PATCH", "/settings", {"faults": {"drop_rate": 0.0}})
    assert (await clean.get("/users?$top=5")).status == 200  # the server itself is fine


async def test_truncated_body(clean: GraphHarness) -> None:
    await clean.admin("PATCH", "/settings", {"faults": {"truncate_rate": 1.0, "path_prefix": "/users"}})
    with pytest.raises(aiohttp.ClientPayloadError):
        await clean.get("/users?$top=50")


async def test_faults_are_reproducible_with_a_seed(clean: GraphHarness) -> None:
    async def failing() -> list[int]:
        await clean.admin("PATCH", "/settings", {"faults": {"error_rate": 0.5, "seed": 42}})  # resets occurrences
        statuses = [(await clean.get(f"/groups?$top={n}")).status for n in range(1, 21)]
        return [n for n, s in enumerate(statuses, 1) if s != 200]

    first, second = await failing(), await failing()
    assert first == second and 3 <= len(first) <= 17
