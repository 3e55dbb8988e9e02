"""The app as the Python worker indexes it: functions, triggers, bindings, routes, auth levels; and host.json."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import function_app
from orchestrators import names
from orchestrators.sync import DEFAULT_LIMITS
from shared.config import SETTINGS_BY_NAME
from shared.parents import CHUNK_SIZE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def indexed():
    app = function_app.app
    app.functions_bindings = None
    functions = {f.get_function_name(): f for f in app.get_functions()}
    app.functions_bindings = None
    return functions


def bindings(function: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(function.get_function_json())["bindings"]
    return found


def trigger_of(function: Any) -> dict[str, Any]:
    return next(b for b in bindings(function) if b["type"].endswith("Trigger"))


def test_exactly_the_expected_functions_are_registered(indexed):
    kinds = {name: trigger_of(f)["type"] for name, f in indexed.items()}
    expected = {name: "orchestrationTrigger" for name in names.ORCHESTRATORS}
    expected |= {name: "activityTrigger" for name in names.ACTIVITIES}
    expected |= {"scheduled_sync": "timerTrigger", "start_sync": "httpTrigger", "get_sync": "httpTrigger",
                 "list_streams": "httpTrigger"}
    assert kinds == expected


def test_http_api_routes_methods_and_auth(indexed):
    routes = {}
    for name, function in indexed.items():
        trigger = trigger_of(function)
        if trigger["type"] == "httpTrigger":
            assert trigger["authLevel"] == "FUNCTION", name
            routes[name] = (trigger["route"], trigger["methods"])
            outputs = [b for b in bindings(function) if b["direction"] == "OUT"]
            assert outputs == [{"direction": "OUT", "type": "http", "name": "$return"}]
    assert routes == {"start_sync": ("syncs", ["POST"]), "get_sync": ("syncs/{id}", ["GET"]),
                      "list_streams": ("streams", ["GET"])}


def test_timer_schedule_comes_from_the_app_setting(indexed):
    trigger = trigger_of(indexed["scheduled_sync"])
    assert trigger["schedule"] == "%SYNC_SCHEDULE%"
    assert trigger["runOnStartup"] is False and trigger["useMonitor"] is True
    default = SETTINGS_BY_NAME["SYNC_SCHEDULE"].default
    assert default is not None and len(default.split()) == 6


def test_starters_get_a_durable_client(indexed):
    for name in ("scheduled_sync", "start_sync", "get_sync"):
        clients = [b for b in bindings(indexed[name]) if b["type"] == "durableClient"]
        assert clients == [{"direction": "IN", "type": "durableClient", "name": "client"}], name


def test_python_parameters_match_binding_names(indexed):
    """The worker refuses to load a function whose parameters and bindings differ."""
    for name, function in indexed.items():
        user = function.get_user_function()
        user = getattr(user, "client_function", None) or getattr(user, "orchestrator_function", None) or user
        params = set(inspect.signature(user).parameters)
        declared = {b["name"] for b in bindings(function) if b["name"] != "$return"}
        assert params == declared, name


def test_orchestrators_and_activities_bind_the_agreed_names(indexed):
    for name in names.ORCHESTRATORS:
        assert trigger_of(indexed[name]) == {"direction": "IN", "type": "orchestrationTrigger", "name": "context",
                                             "orchestration": name}
    for name in names.ACTIVITIES:
        assert trigger_of(indexed[name]) == {"direction": "IN", "type": "activityTrigger", "name": "request",
                                             "activity": name}


def test_the_worker_can_index_the_app_in_a_clean_process():
    """Import with no app settings at all (the worker indexes before settings matter) and count app objects."""
    script = (
        "import function_app, azure.functions as func\n"
        "apps = [v for v in vars(function_app).values() if isinstance(v, func.FunctionRegister)]\n"
        "print(len(apps), len(apps[0].get_functions()))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "SYNC_", "OUTPUT_", "KEY_VAULT"))}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.split() == ["1", str(len(names.ORCHESTRATORS) + len(names.ACTIVITIES) + 4)]


def test_every_name_the_orchestrators_call_is_registered(indexed):
    source = (ROOT / "orchestrators" / "sync.py").read_text()
    called = set(re.findall(r"names\.([A-Z_]+)", source))
    for constant in called - {"results_key", "run_instance_id"}:
        value = getattr(names, constant)
        if isinstance(value, str):
            assert value in indexed, constant


def test_host_json():
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    durable = host["extensions"]["durableTask"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,49}", durable["hubName"])
    assert durable["overridableExistingInstanceStates"] == "NonRunningStates"
    assert 1 <= durable["maxConcurrentOrchestratorFunctions"] <= durable["maxConcurrentActivityFunctions"] <= 64
    # one chunk of parents keeps more partitions in flight than an instance has activity slots
    lanes = CHUNK_SIZE // DEFAULT_LIMITS.get("parents_per_lane", CHUNK_SIZE)
    assert durable["maxConcurrentActivityFunctions"] <= lanes * DEFAULT_LIMITS["partitions_in_flight"]
    assert durable["storageProvider"]["maxQueuePollingInterval"] <= "00:00:10"
    assert durable["tracing"]["traceInputsAndOutputs"] is False
    assert host["extensions"]["http"]["routePrefix"] == "api"


def test_local_settings_example_names_only_known_settings():
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    host_settings = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "AzureWebJobsFeatureFlags"}
    unknown = set(values) - host_settings - set(SETTINGS_BY_NAME)
    assert not unknown
    required = {s.name for s in SETTINGS_BY_NAME.values() if s.required}
    assert required <= set(values)
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
