"""The Graph emulator over real HTTPS: auth, permissions, errors, headers, query options and paging."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.graph import endpoints
from tests.devstack.test_graph_support import GraphHarness, running_harness

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
async def graph(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphHarness]:
    async with running_harness(Path(tmp_path_factory.mktemp("graph-http"))) as harness:
        yield harness


def assert_error(reply: Any, status: int, code: str, *, inner: bool = True) -> dict[str, Any]:
    assert reply.status == status, reply.raw[:500]
    body = reply.json
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if inner:
        assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
        assert error["innerError"]["request-id"] == reply.headers["request-id"]
    else:
        assert "innerError" not in error
    return error


# --- authentication ----------------------------------------------------------------------------------------------
async def test_missing_token_is_401_with_challenge(graph: GraphHarness) -> None:
    reply = await graph.get("/users", token="")
    assert_error(reply, 401, "InvalidAuthenticationToken")
    challenge = reply.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'client_id="00000003-0000-0000-c000-000000000000"' in challenge


@pytest.mark.parametrize("case", ["garbage", "expired", "audience", "tenant", "signature"])
async def test_invalid_tokens_are_401(graph: GraphHarness, case: str) -> None:
    tokens: dict[str, Callable[[], str]] = {
        "garbage": lambda: "not-a-jwt",
        "expired": lambda: graph.token(lifetime=60, now=1_600_000_000),
        "audience": lambda: graph.token(audience="https://vault.azure.net"),
        "tenant": lambda: graph.token(tenant_id="00000000-0000-0000-0000-000000000001"),
        "signature": lambda: graph.token()[:-8] + "AAAAAAAA",
    }
    token = tokens[case]()
    reply = await graph.get("/users", token=token)
    error = assert_error(reply, 401, "InvalidAuthenticationToken")
    assert token not in reply.raw.decode()  # never echo a credential
    if case == "expired":
        assert "expired" in error["message"]


async def test_common_headers_and_client_request_id_echo(graph: GraphHarness) -> None:
    reply = await graph.get("/users?$top=1", headers={"client-request-id": "abc-123"})
    assert reply.status == 200
    h = reply.headers
    assert h["client-request-id"] == "abc-123"
    assert len(h["request-id"]) == 36
    assert h["OData-Version"] == "4.0"
    assert h["Content-Type"].startswith("application/json;odata.metadata=minimal;odata.streaming=true")
    assert "Date" in h and "x-ms-ags-diagnostic" in h
    assert h["x-ms-resource-unit"] == "1"  # users GET costs 2, $top < 20 takes one off


async def test_gzip_when_asked(graph: GraphHarness) -> None:
    assert graph.session is not None
    url = f"{graph.base}/v1.0/users?$top=50"
    headers = {"Authorization": f"Bearer {graph.token()}", "Accept-Encoding": "gzip"}
    async with graph.session.get(url, headers=headers, auto_decompress=False) as resp:
        raw = await resp.read()
        assert resp.headers["Content-Encoding"] == "gzip"
    assert len(gzip.decompress(raw)) > len(raw)


# --- permissions -------------------------------------------------------------------------------------------------
FAMILY_403 = {
    "/users": ("Authorization_RequestDenied", True, ["User.Read.All"]),
    "/groups/{group}/members": ("Authorization_RequestDenied", True, ["GroupMember.Read.All"]),
    "/applications": ("Authorization_RequestDenied", True, ["Application.Read.All"]),
    "/directoryRoles": ("Authorization_RequestDenied", True, ["RoleManagement.Read.Directory"]),
    "/auditLogs/signIns": ("Authorization_RequestDenied", True, ["AuditLog.Read.All"]),
    "/users/{user}/messages": ("ErrorAccessDenied", False, ["Mail.ReadBasic.All"]),
    "/users/{user}/events": ("ErrorAccessDenied", False, ["Calendars.Read"]),
    "/users/{user}/contacts": ("ErrorAccessDenied", False, ["Contacts.Read"]),
    "/teams/{team}/channels": ("Forbidden", True, ["Channel.ReadBasic.All"]),
    "/users/{user}/chats": ("Forbidden", True, ["Chat.ReadBasic.All"]),
    "/users/{user}/drives": ("accessDenied", True, ["Files.Read.All"]),
    "/identity/conditionalAccess/policies": ("AccessDenied", True, ["Policy.Read.All"]),
}


def fill(graph: GraphHarness, template: str) -> str:
    return template.format(user=mail_user(graph), group=biggest_group(graph), team=first_team(graph))


def mail_user(graph: GraphHarness) -> str:
    return next(u for u in graph.ids("users") if graph.tenant.mailbox_state(u) == "ok" and graph.tenant.has_onedrive(u)
                and graph.tenant.collection("chats", u) is not None)


def biggest_group(graph: GraphHarness) -> str:
    return max(graph.ids("groups"), key=lambda g: len(graph.ids("groupMembers", g)))


def first_team(graph: GraphHarness) -> str:
    return next(str(g["id"]) for g in graph.records("groups") if "Team" in (g.get("resourceProvisioningOptions") or []))


@pytest.mark.parametrize("template", sorted(FAMILY_403))
async def test_permission_enforced_per_endpoint_family(graph: GraphHarness, template: str) -> None:
    code, inner, enough = FAMILY_403[template]
    url = fill(graph, template)
    denied = await graph.get(url, roles=["Sites.Selected"] if "drives" not in url else ["User.Read.All"])
    assert_error(denied, 403, code, inner=inner)
    allowed = await graph.get(url, roles=enough)
    assert allowed.status == 200, allowed.raw[:300]


async def test_no_roles_claim_at_all_is_403(graph: GraphHarness) -> None:
    assert_error(await graph.get("/groups", roles=[]), 403, "Authorization_RequestDenied")


async def test_user_delta_needs_more_than_read_basic(graph: GraphHarness) -> None:
    assert (await graph.get("/users", roles=["User.ReadBasic.All"])).status == 200
    assert_error(await graph.get("/users/delta", roles=["User.ReadBasic.All"]), 403, "Authorization_RequestDenied")


async def test_mail_read_basic_hides_body(graph: GraphHarness) -> None:
    url = f"/users/{mail_user(graph)}/messages?$top=3"
    basic = (await graph.get(url, roles=["Mail.ReadBasic.All"])).json["value"]
    full = (await graph.get(url, roles=["Mail.Read"])).json["value"]
    assert basic and all("body" not in m and "bodyPreview" not in m for m in basic)
    assert all("body" in m for m in full)


async def test_get_chats_app_only_fails_like_graph(graph: GraphHarness) -> None:
    assert_error(await graph.get("/chats"), 412, "PreconditionFailed")


# --- documented per-parent errors ----------------------------------------------------------------------------------
def user_with(graph: GraphHarness, state: str) -> str:
    return next(u for u in graph.ids("users") if graph.tenant.mailbox_state(u) == state)


async def test_mailbox_conditions(graph: GraphHarness) -> None:
    no_mailbox = user_with(graph, "no_mailbox")
    denied = user_with(graph, "access_denied")
    for suffix in ("messages", "mailFolders", "events", "contacts"):
        assert_error(await graph.get(f"/users/{no_mailbox}/{suffix}"), 404, "MailboxNotEnabledForRESTAPI")
        assert_error(await graph.get(f"/users/{denied}/{suffix}"), 403, "ErrorAccessDenied", inner=False)


async def test_user_without_onedrive(graph: GraphHarness) -> None:
    user = next(u for u in graph.ids("users") if not graph.tenant.has_onedrive(u))
    assert_error(await graph.get(f"/users/{user}/drive"), 404, "ResourceNotFound")
    assert_error(await graph.get(f"/users/{user}/drives"), 404, "ResourceNotFound")


async def test_unknown_ids(graph: GraphHarness) -> None:
    missing = "00000000-0000-0000-0000-00000000dead"
    assert_error(await graph.get(f"/users/{missing}"), 404, "Request_ResourceNotFound")
    assert_error(await graph.get(f"/groups/{missing}/members"), 404, "Request_ResourceNotFound")
    assert_error(await graph.get(f"/users/{mail_user(graph)}/mailFolders/{missing}/messages"), 404,
                 "ErrorItemNotFound")
    assert_error(await graph.get(f"/users/{missing}/messages"), 404, "ErrorInvalidUser")
    assert_error(await graph.get("/nothing/here"), 400, "BadRequest")


async def test_key_forms_and_upn(graph: GraphHarness) -> None:
    user = graph.records("users")[0]
    plain = await graph.get(f"/users/{user['id']}")
    quoted = await graph.get(f"/users('{user['id']}')")
    by_upn = await graph.get(f"/users/{user['userPrincipalName']}")
    assert plain.json == quoted.json
    assert by_upn.json["id"] == user["id"]
    assert plain.json["@odata.context"].endswith("/v1.0/$metadata#users/$entity")
    assert set(plain.json) - {"@odata.context"} == set(endpoints.USER_DEFAULT_SELECT)
