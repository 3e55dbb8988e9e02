"""The Graph emulator as `python -m devstack up` mounts it: a token from the Entra emulator (client credentials
through azure-identity), full paging, Outlook, `$batch`, the admin API on the stack's advertised URL."""

from __future__ import annotations

from typing import Any

import pytest
from azure.identity import ClientSecretCredential

from tests.conftest import RunningStack

pytestmark = pytest.mark.timeout(240)


def token_for(stack: RunningStack, roles: list[str]) -> str:
    reg = stack.admin.register_app(roles=roles)
    credential = ClientSecretCredential(
        stack.env.tenant_id, reg["client_id"], reg["secret"]["value"], authority=stack.env.authority_host,
        disable_instance_discovery=True, connection_verify=stack.env.ca_bundle,
    )
    return str(credential.get_token("https://graph.microsoft.com/.default").token)


def walk(stack: RunningStack, url: str, token: str) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    with stack.http() as session:
        next_url: str | None = url
        while next_url:
            reply = session.get(next_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert reply.status_code == 200, reply.text[:300]
            body = reply.json()
            items.extend(body["value"])
            pages += 1
            next_url = body.get("@odata.nextLink")
    return items, pages


def test_stack_serves_users_and_mail_with_entra_tokens(stack: RunningStack) -> None:
    graph = stack.env.graph_url
    assert graph is not None
    token = token_for(stack, ["User.Read.All", "Mail.ReadBasic.All"])
    users, pages = walk(stack, f"{graph}/v1.0/users?$top=7&$select=id,userPrincipalName", token)
    assert pages == -(-len(users) // 7) and len({u["id"] for u in users}) == len(users) > 0
    messages = None
    for user in users:
        with stack.http() as session:
            reply = session.get(f"{graph}/v1.0/users/{user['id']}/messages?$top=3",
                                headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if reply.status_code == 200 and reply.json()["value"]:
            messages = reply.json()
            break
    assert messages is not None
    assert all("body" not in m for m in messages["value"])  # Mail.ReadBasic.All leaves the body out
    assert "%24skip=3" in messages["@odata.nextLink"]


def test_stack_permissions_batch_and_admin(stack: RunningStack) -> None:
    graph = stack.env.graph_url
    assert graph is not None and stack.env.graph_admin_url == f"{graph}/_admin"
    token = token_for(stack, ["User.Read.All"])
    with stack.http() as session:
        denied = session.get(f"{graph}/v1.0/groups", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied"
        batch = session.post(f"{graph}/v1.0/$batch", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                             json={"requests": [{"id": "a", "method": "GET", "url": "/users?$top=1"},
                                                {"id": "b", "method": "GET", "url": "/groups?$top=1"}]})
    assert batch.status_code == 200
    assert {r["id"]: r["status"] for r in batch.json()["responses"]} == {"a": 200, "b": 403}
    counters = stack.admin.graph("GET", "/counters")
    assert counters["requests"] >= 3 and counters["by_status"].get("403", 0) >= 2
    assert stack.admin.graph("GET", "/health")["tenant_id"] == stack.env.tenant_id
