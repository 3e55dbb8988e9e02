"""HTTP and timer starters through the SDK's real DurableOrchestrationClient, built from a client binding that
points at the local Durable host (HTTP on loopback, like the Functions host's RPC endpoint)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import azure.functions as func
import pytest

import function_app
from localrun.host import LocalHost
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime
from localrun.simulated import SimulatedTenant
from orchestrators import names
from orchestrators.requests import MAX_BODY_BYTES
from shared.streams import CATALOG

TENANT_A = "0a0a0a0a-0000-4000-8000-00000000000a"
TENANT_B = "0b0b0b0b-0000-4000-8000-00000000000b"
APP = "https://m365lake.azurewebsites.net"


@pytest.fixture(autouse=True)
def app_settings(monkeypatch):
    monkeypatch.setenv("GRAPH_TENANT_IDS", TENANT_A)
    monkeypatch.setenv("GRAPH_CLIENT_ID", "11111111-1111-4111-8111-111111111111")
    monkeypatch.setenv("KEY_VAULT_URL", "https://kv.vault.azure.net")
    monkeypatch.setenv("OUTPUT_ACCOUNT_URL", "https://lake.blob.core.windows.net")


@pytest.fixture(scope="module")
def functions():
    app = function_app.app
    app.functions_bindings = None
    found = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}
    app.functions_bindings = None
    return found


@pytest.fixture
async def world():
    tenant = SimulatedTenant(parents={"users": ["u1", "u2"], "groups": ["g1"], "teams": ["g1"], "chats": ["c1"],
                                      "drives": ["d1"], "directory_roles": ["r1"]})
    runtime = DurableRuntime(FunctionIndex.from_app(function_app.app).with_activities(tenant.activities()))
    async with LocalHost(runtime) as host:
        yield tenant, runtime, host
    await runtime.close()


def post(body: bytes | dict[str, Any] | None = None) -> func.HttpRequest:
    raw = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    return func.HttpRequest("POST", f"{APP}/api/syncs", body=raw, headers={"content-type": "application/json"})


def get(path: str, **route) -> func.HttpRequest:
    return func.HttpRequest("GET", f"{APP}/api/{path}", body=b"", route_params=route)


class Timer:
    past_due = False


async def test_post_starts_the_tenant_run_and_answers_202_with_status_urls(functions, world):
    _tenant, runtime, host = world
    response = await functions["start_sync"](req=post(), client=host.client_binding)
    assert response.status_code == 202
    body = json.loads(response.get_body())
    assert body["id"] == names.run_instance_id(TENANT_A)
    assert body["statusQueryGetUri"].startswith(f"{APP}/runtime/webhooks/durabletask/instances/{body['id']}?")
    assert body["statusUri"] == f"{APP}/api/syncs/{body['id']}"
    assert response.headers["Location"] == body["statusQueryGetUri"]
    done = await runtime.wait(body["id"])
    assert done.status == "Completed", done.error
    assert json.loads(done.input_json) == {"tenant_id": TENANT_A, "trigger": "http", "overrides": {},
                                           "limits": {"reruns": 2, "rerun_delay_seconds": 60.0}}
    assert done.output["partitions"] > 22


async def test_overrides_reach_the_orchestrator(functions, world):
    _tenant, runtime, host = world
    body = {"streams": ["users", "mail_messages"], "start_time": "2024-01-01T00:00:00Z",
            "end_time": "2024-02-01T00:00:00+00:00", "user_filter": "department eq 'Sales'", "full": True}
    response = await functions["start_sync"](req=post(body), client=host.client_binding)
    assert response.status_code == 202, response.get_body()
    done = await runtime.wait(names.run_instance_id(TENANT_A))
    overrides = json.loads(done.input_json)["overrides"]
    assert overrides == {"streams": ["users", "mail_messages"], "start_time": "2024-01-01T00:00:00Z",
                         "end_time": "2024-02-01T00:00:00Z", "user_filter": "department eq 'Sales'", "full": True}
    assert sorted(done.output["streams"]) == ["mail_messages", "users"]


async def test_invalid_body_gets_400_listing_every_problem(functions, world):
    _, runtime, host = world
    body = {"streams": ["users", "nope"], "start_time": "yesterday", "end_time": "2024-01-01T00:00:00",
            "full": "yes", "user_filter": "", "colour": "blue"}
    response = await functions["start_sync"](req=post(body), client=host.client_binding)
    assert response.status_code == 400
    problems = json.loads(response.get_body())["problems"]
    fields = sorted(p.split(":")[0] for p in problems)
    assert fields == ["colour", "end_time", "full", "start_time", "streams", "user_filter"]
    assert any("nope" in p for p in problems)
    assert not runtime.instances


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"all"'])
async def test_a_body_that_is_not_a_json_object_is_rejected(functions, world, raw):
    _, _, host = world
    response = await functions["start_sync"](req=post(raw), client=host.client_binding)
    assert response.status_code == 400
    assert json.loads(response.get_body())["problems"][0].startswith("body:")


async def test_window_is_checked_against_the_app_settings_too(functions, world, monkeypatch):
    monkeypatch.setenv("SYNC_END_TIME", "2023-01-01T00:00:00Z")
    _, _, host = world
    response = await functions["start_sync"](req=post({"start_time": "2024-01-01T00:00:00Z"}),
                                             client=host.client_binding)
    assert response.status_code == 400
    assert "SYNC_START_TIME/SYNC_END_TIME" in json.loads(response.get_body())["problems"][0]


async def test_oversized_body_gets_413(functions, world):
    _, runtime, host = world
    response = await functions["start_sync"](req=post(b" " * (MAX_BODY_BYTES + 1)), client=host.client_binding)
    assert response.status_code == 413
    assert not runtime.instances


async def test_second_start_while_running_gets_409_and_the_timer_skips(functions, world, caplog):
    tenant, runtime, host = world
    tenant.gate = asyncio.Event()
    first = await functions["start_sync"](req=post(), client=host.client_binding)
    assert first.status_code == 202
    run_id = json.loads(first.get_body())["id"]
    second = await functions["start_sync"](req=post({"streams": ["users"]}), client=host.client_binding)
    assert second.status_code == 409
    assert json.loads(second.get_body())["id"] == run_id
    with caplog.at_level(logging.INFO, logger="orchestrators.starters"):
        await functions["scheduled_sync"](timer=Timer(), client=host.client_binding)
    assert f"skipped: run {run_id} is still running" in caplog.text

    status = await functions["get_sync"](req=get(f"syncs/{run_id}", id=run_id), client=host.client_binding)
    running = json.loads(status.get_body())
    assert status.status_code == 200 and running["runtimeStatus"] == "Running"
    assert running["phase"] == "syncing" and running["totals"]["done"] == 0
    assert running["totals"]["total"] >= 11  # the single-partition streams are known from the start

    tenant.gate.set()
    done = await runtime.wait(run_id)
    assert done.status == "Completed"
    assert json.loads(done.input_json)["trigger"] == "http"
    again = await functions["start_sync"](req=post(), client=host.client_binding)
    assert again.status_code == 202
    await runtime.wait(run_id)


async def test_status_reports_progress_and_the_summary(functions, world):
    _, runtime, host = world
    await functions["start_sync"](req=post(), client=host.client_binding)
    run_id = names.run_instance_id(TENANT_A)
    await runtime.wait(run_id)
    response = await functions["get_sync"](req=get(f"syncs/{run_id}", id=run_id), client=host.client_binding)
    body = json.loads(response.get_body())
    assert body["runtimeStatus"] == "Completed" and body["phase"] == "finished"
    assert body["summary"]["partitions"] == body["totals"]["done"] == body["totals"]["total"]
    assert body["streams"]["mail_messages"]["done"] == 2
    missing = await functions["get_sync"](req=get("syncs/nope", id="nope"), client=host.client_binding)
    assert missing.status_code == 404
    for hostile in ("x?showInput=true", "x/terminate", "", "a" * 201):
        refused = await functions["get_sync"](req=get("syncs/x", id=hostile), client=host.client_binding)
        assert refused.status_code == 400, hostile


async def test_timer_starts_one_run_per_tenant(functions, world, monkeypatch):
    monkeypatch.setenv("GRAPH_TENANT_IDS", f"{TENANT_A},{TENANT_B}")
    _, runtime, host = world
    await functions["scheduled_sync"](timer=Timer(), client=host.client_binding)
    ids = sorted(runtime.instances)
    assert names.run_instance_id(TENANT_A) in ids and names.run_instance_id(TENANT_B) in ids
    for tenant_id in (TENANT_A, TENANT_B):
        done = await runtime.wait(names.run_instance_id(tenant_id))
        assert json.loads(done.input_json) == {"tenant_id": tenant_id, "trigger": "timer", "overrides": {},
                                               "limits": {"reruns": 2, "rerun_delay_seconds": 60.0}}
        assert done.output["tenant_id"] == tenant_id


async def test_several_tenants_need_a_tenant_id(functions, world, monkeypatch):
    monkeypatch.setenv("GRAPH_TENANT_IDS", f"{TENANT_A},{TENANT_B}")
    _, runtime, host = world
    response = await functions["start_sync"](req=post(), client=host.client_binding)
    assert response.status_code == 400
    assert json.loads(response.get_body())["problems"][0].startswith("tenant_id: required")
    chosen = await functions["start_sync"](req=post({"tenant_id": TENANT_B.upper()}), client=host.client_binding)
    assert chosen.status_code == 202
    await runtime.wait(names.run_instance_id(TENANT_B))
    unknown = await functions["start_sync"](req=post({"tenant_id": "22222222-2222-4222-8222-222222222222"}),
                                            client=host.client_binding)
    assert unknown.status_code == 400


async def test_streams_endpoint_lists_the_catalog_with_permissions(functions, monkeypatch):
    monkeypatch.setenv("SYNC_STREAMS", "users,groups")
    response = await functions["list_streams"](req=get("streams"))
    body = json.loads(response.get_body())
    assert [s["name"] for s in body["streams"]] == list(CATALOG)
    users = body["streams"][0]
    assert users["permissions"] == list(CATALOG["users"].permissions) and users["enabled"] is True
    assert next(s for s in body["streams"] if s["name"] == "contacts")["enabled"] is False
    assert next(s for s in body["streams"] if s["name"] == "mail_messages")["partitioned_by"] == "users"


async def test_two_simultaneous_starts_give_one_run_and_one_409(functions, world):
    tenant, runtime, host = world
    tenant.gate = asyncio.Event()
    answers = await asyncio.gather(*(functions["start_sync"](req=post(), client=host.client_binding)
                                     for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [202, 409]
    assert [i for i in runtime.instances if ":" not in i] == [names.run_instance_id(TENANT_A)]
    tenant.gate.set()
    assert (await runtime.wait(names.run_instance_id(TENANT_A))).status == "Completed"
