"""Whole runs on the local stack: starters -> real DurableOrchestrationClient -> local Durable host -> the real
orchestrators -> the real activities -> engine -> Graph emulator / Key Vault emulator / Azurite; the blobs are
compared with what an independent reader gets from the emulator."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import azure.functions as func
import orjson
import pytest
from azure.core.exceptions import ResourceNotFoundError

import function_app
from activities import sync as activities
from localrun.host import LocalHost
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime, RuntimeOptions
from localrun.settings import stack_app_settings
from orchestrators import names
from shared.config import load_settings
from shared.runtime import close_engines, get_engine
from shared.streams import CATALOG
from shared.writer.paths import partition_name
from tests.conftest import RunningStack
from tests.engine.conftest import set_vault_secret, unique, vault_writer  # noqa: F401  (fixture)
from tests.engine.oracle import ORACLE_ROLES, Oracle

pytestmark = pytest.mark.slow
APP = "https://m365lake.azurewebsites.net"


@pytest.fixture(scope="module")
def oracle(stack: RunningStack) -> Oracle:
    if not stack.env.graph_url:
        pytest.skip("the Graph emulator is not part of this stack")
    return Oracle(stack)


@pytest.fixture(scope="module")
def expected(oracle: Oracle) -> dict[str, set[tuple[str | None, str]]]:
    return oracle.expected()


@pytest.fixture(scope="module")
def functions() -> dict[str, Any]:
    app = function_app.app
    app.functions_bindings = None
    found = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}
    app.functions_bindings = None
    return found


@pytest.fixture()
async def app_env(stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, str]]:
    """The app settings the local runner derives from the stack, in a container of the test's own."""
    values = {**stack_app_settings(stack.env), "OUTPUT_CONTAINER": unique("orch").lower()}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    activities.settings.cache_clear()
    yield values
    activities.settings.cache_clear()
    await close_engines()


async def host_for(options: RuntimeOptions | None = None) -> tuple[DurableRuntime, LocalHost]:
    runtime = DurableRuntime(FunctionIndex.from_app(function_app.app), options or RuntimeOptions())
    return runtime, LocalHost(runtime)


def post(body: dict[str, Any] | None = None) -> func.HttpRequest:
    return func.HttpRequest("POST", f"{APP}/api/syncs", body=json.dumps(body or {}).encode())


async def manifest(summary: dict[str, Any]) -> dict[str, Any]:
    engine = await get_engine(load_settings())
    data: dict[str, Any] = orjson.loads(await (await engine.blob(summary["manifest_path"]).download_blob()).readall())
    return data


async def success_marker_exists(summary: dict[str, Any]) -> bool:
    engine = await get_engine(load_settings())
    marker = summary["manifest_path"].rsplit("/", 1)[0] + "/_SUCCESS"
    try:
        await engine.blob(marker).get_blob_properties()
    except ResourceNotFoundError:
        return False
    return True


async def records(path: str) -> list[dict[str, Any]]:
    engine = await get_engine(load_settings())
    data = await (await engine.blob(path).download_blob()).readall()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return [orjson.loads(line) for line in data.splitlines()]


async def copied_pairs(partitions: list[dict[str, Any]]) -> dict[str, list[tuple[str | None, str]]]:
    out: dict[str, list[tuple[str | None, str]]] = {stream: [] for stream in CATALOG}
    for part in partitions:
        if part["status"] != "ok":
            continue
        spec = CATALOG[part["stream"]]
        rows = await records(part["blob_path"])
        assert len(rows) == part["records"], part
        for row in rows:
            key = row.get(spec.parent_key) if spec.fan_out and spec.parent_key else None
            out[part["stream"]].append((key, row["id"]))
    return out


async def test_http_run_of_all_22_streams_matches_the_emulator(stack, app_env, functions, expected, oracle):
    runtime, host = await host_for()
    async with host:
        response = await functions["start_sync"](req=post(), client=host.client_binding)
        assert response.status_code == 202, response.get_body()
        done = await runtime.wait(json.loads(response.get_body())["id"])
        status = await functions["get_sync"](req=func.HttpRequest("GET", f"{APP}/api/syncs/{done.instance_id}",
                                                                  body=b"", route_params={"id": done.instance_id}),
                                             client=host.client_binding)
    await runtime.close()
    assert done.status == "Completed", done.error
    summary = done.output
    assert summary["status"] == "succeeded" and summary["failed"] == 0
    assert await success_marker_exists(summary)
    document = await manifest(summary)
    partitions = document["partitions"]
    assert len(partitions) == summary["partitions"]
    assert {p["stream"] for p in partitions} == set(CATALOG)
    keys = Counter((p["stream"], p["parent_id"]) for p in partitions)
    assert max(keys.values()) == 1, "every partition is reported exactly once"
    pairs = await copied_pairs(partitions)
    for stream in CATALOG:
        assert Counter(pairs[stream]) == Counter(expected[stream]), stream
    # users without a mailbox: recorded as skipped with the reason, and the run still succeeded
    skipped = [p for p in partitions if p["status"] == "skipped" and p["stream"] == "mail_messages"]
    no_mailbox = [u for u in oracle.ids("/users") if oracle.status(f"/users/{u}/messages?$top=1") == 404]
    assert no_mailbox and set(no_mailbox) <= {p["parent_id"] for p in skipped}
    assert all(p.get("reason") and p["blob_path"] is None for p in skipped)
    body = json.loads(status.get_body())
    assert body["runtimeStatus"] == "Completed" and body["summary"] == summary
    assert body["streams"]["mail_messages"]["skipped"] == len(skipped)
    assert body["totals"]["done"] == summary["partitions"]


async def test_timer_run_copies_every_stream(stack, app_env, functions, expected):
    runtime, host = await host_for()

    class Timer:
        past_due = True

    async with host:
        await functions["scheduled_sync"](timer=Timer(), client=host.client_binding)
        done = await runtime.wait(names.run_instance_id(stack.env.tenant_id))
    await runtime.close()
    assert done.status == "Completed", done.error
    assert json.loads(done.input_json or "{}")["trigger"] == "timer"
    summary = done.output
    assert summary["status"] == "succeeded" and await success_marker_exists(summary)
    pairs = await copied_pairs((await manifest(summary))["partitions"])
    for stream in CATALOG:
        assert summary["streams"][stream]["records"] == len(expected[stream]), stream
        assert Counter(pairs[stream]) == Counter(expected[stream]), stream


async def test_missing_permission_fails_its_streams_only_and_withholds_success(
        stack, app_env, functions, expected, vault_writer, monkeypatch):  # noqa: F811
    roles = [r for r in ORACLE_ROLES if r not in ("AuditLog.Read.All", "Mail.Read")]
    app = stack.admin.register_app(roles=roles, secret=True, display_name="no audit logs, no mail")
    secret_name = unique("no-audit")
    await set_vault_secret(stack, vault_writer, secret_name, app["secret"]["value"])
    monkeypatch.setenv("GRAPH_CLIENT_ID", app["client_id"])
    monkeypatch.setenv("GRAPH_CLIENT_SECRET_NAME", secret_name)
    activities.settings.cache_clear()
    runtime, host = await host_for()
    async with host:
        response = await functions["start_sync"](req=post(), client=host.client_binding)
        done = await runtime.wait(json.loads(response.get_body())["id"])
    await runtime.close()
    assert done.status == "Completed", done.error
    summary = done.output
    assert summary["status"] == "failed" and summary["success_marker"] is False
    assert not await success_marker_exists(summary)
    partitions = (await manifest(summary))["partitions"]
    failed = [p for p in partitions if p["status"] == "failed"]
    assert {p["stream"] for p in failed} == {"audit_logs_directory", "audit_logs_signins", "mail_messages"}
    for p in failed:
        permission = "Mail.ReadBasic.All" if p["stream"] == "mail_messages" else "AuditLog.Read.All"
        assert permission in p["error_message"], p
    mail = [p for p in partitions if p["stream"] == "mail_messages"]
    assert len(mail) == len(expected["users"])
    asked = [p for p in mail if p["requests"] > 0]
    assert len(asked) < len(mail) / 2, "a stream-wide failure is not repeated for every mailbox"
    assert all(p["status"] in ("ok", "skipped") for p in partitions if p not in failed)
    pairs = await copied_pairs(partitions)
    for stream in set(CATALOG) - {"audit_logs_directory", "audit_logs_signins", "mail_messages"}:
        assert Counter(pairs[stream]) == Counter(expected[stream]), stream


async def test_second_start_while_running_gets_409(stack, app_env, functions):
    runtime, host = await host_for()
    async with host:
        first = await functions["start_sync"](req=post({"streams": ["users", "contacts"]}),
                                              client=host.client_binding)
        assert first.status_code == 202
        second = await functions["start_sync"](req=post(), client=host.client_binding)
        run_id = json.loads(first.get_body())["id"]
        assert second.status_code == 409, second.get_body()
        assert json.loads(second.get_body())["id"] == run_id
        done = await runtime.wait(run_id)
    await runtime.close()
    assert done.status == "Completed" and sorted(done.output["streams"]) == ["contacts", "users"]


async def test_activity_retried_after_a_crash_leaves_one_copy(stack, app_env, functions, expected, oracle):
    users_with_contacts = sorted({parent for parent, _ in expected["contacts"]})
    victim = users_with_contacts[0]
    deliveries: list[int] = []

    def crash_after_first_write(name: str, payload: Any, delivery: int) -> bool:
        if name == names.SYNC_PARTITION and payload["stream"] == "contacts" and payload["parent_id"] == victim:
            deliveries.append(delivery)
            return delivery == 1  # the worker died after writing, before the host recorded the result
        return False

    runtime, host = await host_for(RuntimeOptions(redeliver=crash_after_first_write))
    async with host:
        response = await functions["start_sync"](req=post({"streams": ["contacts"]}), client=host.client_binding)
        done = await runtime.wait(json.loads(response.get_body())["id"])
    await runtime.close()
    assert done.status == "Completed", done.error
    assert deliveries == [1, 2]
    partitions = (await manifest(done.output))["partitions"]
    [mine] = [p for p in partitions if p["parent_id"] == victim]
    folder = mine["blob_path"].rsplit("/", 1)[0]
    engine = await get_engine(load_settings())
    container = engine.blob_service.get_container_client(load_settings().output_container)
    blobs = [b.name async for b in container.list_blobs(name_starts_with=f"{folder}/{partition_name(victim)}")]
    assert blobs == [mine["blob_path"]]
    rows = await records(mine["blob_path"])
    assert sorted(r["id"] for r in rows) == sorted(i for parent, i in expected["contacts"] if parent == victim)
