"""The HTTP API against its OpenAPI document (docs/openapi.yaml), fuzzed with hypothesis: the real HTTP functions
are invoked in-process with `azure.functions.HttpRequest` objects and a real DurableOrchestrationClient on the local
Durable host. No answer is a 5xx, every answer matches the document, and every 4xx says what is wrong."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
import yaml
from azure.durable_functions.models.utils import http_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource

import function_app
from localrun.host import LocalHost
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime
from orchestrators.requests import FIELDS, MAX_BODY_BYTES
from shared.streams import CATALOG

DOC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text("utf-8"))
REGISTRY = Registry().with_resource("urn:api", Resource.from_contents({**DOC, "$schema":
                                                                          "https://json-schema.org/draft/2020-12/schema"}))
APP = "https://m365lake.azurewebsites.net"
TENANT = "0f4c1c9e-2d7e-4a51-9a55-1f0a6c3b8e21"
SETTINGS = {"GRAPH_TENANT_IDS": TENANT, "GRAPH_CLIENT_ID": "5b1c9d0e-3f2a-4c8b-9e7d-6a5b4c3d2e1f",
            "KEY_VAULT_URL": "https://vault.example.net", "OUTPUT_ACCOUNT_URL": "https://acct.blob.example.net"}


def _validator(path: str, method: str, status: int) -> Draft202012Validator:
    escaped = path.replace("~", "~0").replace("/", "~1")
    pointer = f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"
    return Draft202012Validator({"$ref": f"urn:api#{pointer}"}, registry=REGISTRY)


def _check(path: str, method: str, response: func.HttpResponse) -> dict[str, Any]:
    status = response.status_code
    assert status < 500, response.get_body()
    assert str(status) in DOC["paths"][path][method]["responses"], f"{status} is not in the OpenAPI document"
    body: dict[str, Any] = json.loads(response.get_body())
    errors = sorted(_validator(path, method, status).iter_errors(body), key=str)
    assert not errors, f"{status} answer does not match the document: {errors[0].message}"
    if 400 <= status < 500:
        assert body["error"].strip()
        for problem in body.get("problems", []):
            assert ":" in problem, f"a problem must name its field: {problem!r}"
    return body


@pytest.fixture(scope="module")
def functions() -> dict[str, Any]:
    app = function_app.app
    app.functions_bindings = None
    found = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}
    app.functions_bindings = None
    return found


@pytest.fixture(scope="module")
def host() -> Iterator[tuple[DurableRuntime, LocalHost, asyncio.AbstractEventLoop]]:
    """A local Durable host whose sync orchestrations plan nothing (the API is under test, not the engine)."""
    index = FunctionIndex.from_app(function_app.app).with_activities({
        "plan_sync": lambda run: {"streams": [], "single": [], "groups": []},
        "write_manifest": lambda request: {"run_id": request["run"]["run_id"], "tenant_id": TENANT,
                                           "status": "succeeded", "manifest_path": "m", "success_marker": True,
                                           "partitions": 0, "ok": 0, "skipped": 0, "failed": 0, "records": 0,
                                           "streams": {}},
    })
    loop = asyncio.new_event_loop()
    runtime = DurableRuntime(index)
    local = LocalHost(runtime)
    loop.run_until_complete(local.__aenter__())
    try:
        yield runtime, local, loop
    finally:
        loop.run_until_complete(runtime.close())
        loop.run_until_complete(local.__aexit__(None, None, None))
        # The Durable SDK keeps one module-global aiohttp session bound to the loop that first used it: close it
        # with this loop, or every later test using the SDK's client fails with "Event loop is closed".
        loop.run_until_complete(http_utils._close_session())
        loop.close()


@pytest.fixture(autouse=True)
def app_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SETTINGS.items():
        monkeypatch.setenv(key, value)


def _post(functions: dict[str, Any], host: Any, body: bytes) -> func.HttpResponse:
    runtime, local, loop = host
    request = func.HttpRequest("POST", f"{APP}/api/syncs", body=body)
    response: func.HttpResponse = loop.run_until_complete(functions["start_sync"](req=request,
                                                                                  client=local.client_binding))
    if response.status_code == 202:  # let the (empty) run finish so the next start is not a 409
        loop.run_until_complete(runtime.wait(json.loads(response.get_body())["id"]))
    return response


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)
field_values = st.fixed_dictionaries({}, optional={
    "tenant_id": st.sampled_from([TENANT, TENANT.upper(), "not-a-guid", ""]) | json_values,
    "streams": st.sampled_from(["all", ["all"], list(CATALOG)[:3], ["users", "nope"], []]) | json_values,
    "start_time": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "yesterday"]) | json_values,
    "end_time": st.sampled_from(["2023-01-01T00:00:00+00:00", "2025-06-01T00:00:00Z"]) | json_values,
    "user_filter": st.sampled_from(["department eq 'Sales'", "", "x" * 3000]) | json_values,
    "full": st.booleans() | json_values,
})
bodies = (field_values.map(lambda d: json.dumps(d).encode())
          | st.dictionaries(st.text(max_size=12), json_values, max_size=4).map(lambda d: json.dumps(d).encode())
          | json_values.map(lambda v: json.dumps(v).encode())
          | st.binary(max_size=200))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_post_syncs_never_5xx_and_explains_every_4xx(functions: dict[str, Any], host: Any, body: bytes) -> None:
    response = _post(functions, host, body)
    answer = _check("/api/syncs", "post", response)
    if response.status_code == 400:
        assert answer["problems"]
    if response.status_code == 202:
        parsed = json.loads(body) if body.strip() else {}
        assert isinstance(parsed, dict) and set(parsed) <= set(FIELDS)


def test_oversized_body_gets_413(functions: dict[str, Any], host: Any) -> None:
    body = json.dumps({"user_filter": "x" * (MAX_BODY_BYTES + 10)}).encode()
    answer = _check("/api/syncs", "post", _post(functions, host, body))
    assert answer["limit_bytes"] == MAX_BODY_BYTES


def test_every_problem_is_listed_at_once(functions: dict[str, Any], host: Any) -> None:
    body = json.dumps({"streams": ["nope"], "full": "yes", "start_time": "2024-01-01", "bogus": 1}).encode()
    answer = _check("/api/syncs", "post", _post(functions, host, body))
    fields = {p.split(":", 1)[0] for p in answer["problems"]}
    assert {"streams", "full", "start_time", "bogus"} <= fields


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(instance_id=st.text(max_size=250))
def test_get_sync_never_5xx(functions: dict[str, Any], host: Any, instance_id: str) -> None:
    _, local, loop = host
    request = func.HttpRequest("GET", f"{APP}/api/syncs/x", body=b"", route_params={"id": instance_id})
    response = loop.run_until_complete(functions["get_sync"](req=request, client=local.client_binding))
    _check("/api/syncs/{id}", "get", response)


def test_streams_listing_matches_the_document(functions: dict[str, Any]) -> None:
    response = functions["list_streams"](req=func.HttpRequest("GET", f"{APP}/api/streams", body=b""))
    if asyncio.iscoroutine(response):
        response = asyncio.run(response)
    answer = _check("/api/streams", "get", response)
    assert len(answer["streams"]) == len(CATALOG)


def test_every_route_requires_a_function_key() -> None:
    app = function_app.app
    app.functions_bindings = None
    routes = {}
    for function in app.get_functions():
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] == "httpTrigger":
                routes[binding["route"]] = binding["authLevel"]
    app.functions_bindings = None
    assert routes and set(routes.values()) == {"FUNCTION"}, routes
    documented = {p.removeprefix("/api/") for p in DOC["paths"]}
    assert set(routes) == documented, "the OpenAPI document and the app's routes differ"
