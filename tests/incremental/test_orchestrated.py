"""Through the real starters, orchestrators and activities (local Durable host): the second run writes changes,
`POST /api/syncs {"full": true}` takes snapshots again, and the manifest counts both kinds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import azure.functions as func
import orjson
import pytest

import function_app
from activities import sync as activities
from localrun.host import LocalHost
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime, RuntimeOptions
from localrun.settings import stack_app_settings
from shared.config import load_settings
from shared.runtime import close_engines, get_engine
from tests.conftest import RunningStack
from tests.engine.conftest import unique

APP = "https://m365lake.azurewebsites.net"
BODY = {"streams": ["users", "group_member", "mail_messages"]}


@pytest.fixture()
def start_sync() -> Iterator[Any]:
    app = function_app.app
    app.functions_bindings = None
    found = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}
    app.functions_bindings = None
    yield found["start_sync"]


@pytest.fixture()
async def app_env(istack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    for key, value in {**stack_app_settings(istack.env), "OUTPUT_CONTAINER": unique("orchinc").lower()}.items():
        monkeypatch.setenv(key, value)
    activities.settings.cache_clear()
    yield
    activities.settings.cache_clear()
    await close_engines()


async def run_once(start_sync: Any, body: dict[str, Any]) -> dict[str, Any]:
    runtime = DurableRuntime(FunctionIndex.from_app(function_app.app), RuntimeOptions())
    host = LocalHost(runtime)
    async with host:
        response = await start_sync(req=func.HttpRequest("POST", f"{APP}/api/syncs", body=json.dumps(body).encode()),
                                    client=host.client_binding)
        assert response.status_code == 202, response.get_body()
        done = await runtime.wait(json.loads(response.get_body())["id"])
    await runtime.close()
    assert done.status == "Completed", done.error
    summary: dict[str, Any] = done.output
    engine = await get_engine(load_settings())
    manifest: dict[str, Any] = orjson.loads(
        await (await engine.blob(summary["manifest_path"]).download_blob()).readall())
    return manifest


def kinds(manifest: dict[str, Any]) -> set[str]:
    return {p["kind"] for p in manifest["partitions"] if p["status"] == "ok"}


async def test_orchestrated_runs_write_changes_and_full_forces_snapshots(app_env: None, start_sync: Any) -> None:
    first = await run_once(start_sync, BODY)
    assert first["summary"]["status"] == "succeeded" and kinds(first) == {"snapshot"}
    second = await run_once(start_sync, BODY)
    assert kinds(second) == {"changes"} and second["summary"]["records"] == 0
    streams = second["summary"]["streams"]
    assert streams["users"]["changes"] == 1 and streams["mail_messages"]["changes"] == streams["mail_messages"]["ok"]
    forced = await run_once(start_sync, {**BODY, "full": True})
    assert kinds(forced) == {"snapshot"} and forced["summary"]["records"] == first["summary"]["records"]
    assert forced["run"]["overrides"]["full"] is True
