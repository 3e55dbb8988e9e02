"""The emulator knobs the fault matrix relies on, through their real HTTP faces."""

from __future__ import annotations

import json

import pytest

from tests.conftest import RunningStack


@pytest.fixture()
def graph_app(stack: RunningStack) -> dict[str, str]:
    app = stack.admin.register_app(roles=["User.Read.All"], secret=True, display_name="hooks")
    return {"client_id": app["client_id"], "secret": app["secret"]["value"]}


def _token(stack: RunningStack, app: dict[str, str]) -> str:
    resp = stack.http().post(f"{stack.env.authority_host}/{stack.env.tenant_id}/oauth2/v2.0/token", timeout=30,
                             data={"client_id": app["client_id"], "client_secret": app["secret"],
                                   "grant_type": "client_credentials",
                                   "scope": "https://graph.microsoft.com/.default"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def test_entra_lists_the_token_values_it_issued(stack: RunningStack, graph_app: dict[str, str]) -> None:
    before = stack.admin.entra("GET", "/tokens")["count"]
    token = _token(stack, graph_app)
    listed = stack.admin.entra("GET", f"/tokens?since={before}")
    assert listed["count"] == before + 1
    assert listed["tokens"] == [token]
    assert stack.admin.entra("GET", "/tokens?since=x", expect=400) is not None


def test_graph_429s_can_come_without_retry_after(stack: RunningStack, graph_app: dict[str, str]) -> None:
    token = _token(stack, graph_app)
    http = stack.http()
    http.headers["Authorization"] = f"Bearer {token}"
    url = f"{stack.env.graph_url}/v1.0/users?$top=5"
    try:
        for retry_after in (True, False):
            stack.admin.graph("PATCH", "/settings", {"throttle": {"enabled": True, "scale": 100.0,
                                                                  "budget_scale": 0.0001,
                                                                  "retry_after": retry_after}})
            stack.admin.graph("POST", "/throttle/reset")
            answers = [http.get(url, timeout=30) for _ in range(4)]
            throttled = [a for a in answers if a.status_code == 429]
            assert throttled, [a.status_code for a in answers]
            assert all(("Retry-After" in a.headers) is retry_after for a in throttled)
    finally:
        stack.admin.graph("PATCH", "/settings", {"throttle": {"enabled": False, "scale": 1.0, "budget_scale": 1.0,
                                                              "retry_after": True}})
        stack.admin.graph("POST", "/throttle/reset")


def test_graph_serves_well_framed_answers_with_cut_json(stack: RunningStack, graph_app: dict[str, str]) -> None:
    token = _token(stack, graph_app)
    http = stack.http()
    http.headers["Authorization"] = f"Bearer {token}"
    try:
        stack.admin.graph("PATCH", "/settings", {"faults": {"malformed_rate": 1.0}})
        resp = http.get(f"{stack.env.graph_url}/v1.0/users?$top=5", timeout=30)
        assert resp.status_code == 200
        assert len(resp.content) > 10
        with pytest.raises(json.JSONDecodeError):
            json.loads(resp.content)
        assert stack.admin.graph("GET", "/counters")["faults"].get("malformed", 0) >= 1
    finally:
        stack.admin.graph("PATCH", "/settings", {"faults": {"malformed_rate": 0.0}})
    assert http.get(f"{stack.env.graph_url}/v1.0/users?$top=5", timeout=30).json()["value"]


def test_graph_global_storm_leaves_the_other_scopes_alone(stack: RunningStack, graph_app: dict[str, str]) -> None:
    """`throttle.global_budget_scale` shrinks the global per-app budget only: the 429s name the global scope."""
    token = _token(stack, graph_app)
    http = stack.http()
    http.headers["Authorization"] = f"Bearer {token}"
    before = stack.admin.graph("GET", "/counters")["throttled_by_scope"]
    try:
        stack.admin.graph("PATCH", "/settings", {"throttle": {"enabled": True, "scale": 100.0,
                                                              "global_budget_scale": 0.00001}})
        stack.admin.graph("POST", "/throttle/reset")
        answers = [http.get(f"{stack.env.graph_url}/v1.0/users?$top=5", timeout=30) for _ in range(4)]
        assert [a.status_code for a in answers].count(429) >= 2
        after = stack.admin.graph("GET", "/counters")["throttled_by_scope"]
        grown = {k for k, v in after.items() if v > before.get(k, 0)}
        assert grown == {"global"}, grown
    finally:
        stack.admin.graph("PATCH", "/settings", {"throttle": {"enabled": False, "scale": 1.0,
                                                              "global_budget_scale": 1.0}})
        stack.admin.graph("POST", "/throttle/reset")
