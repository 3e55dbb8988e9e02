"""Faults, throttling, hostile nextLinks and missing permissions, through the real engine and the emulator."""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from devstack.graph import faults
from devstack.graph.settings import FaultSettings
from shared.config import load_settings
from shared.graph import OffHostLinkError, RequestStats
from shared.parents import ParentListingError
from shared.runtime import close_engines, get_engine
from shared.streams import CATALOG
from shared.sync import list_parents, sync_partition
from tests.conftest import RunningStack
from tests.engine.conftest import engine_environ, set_vault_secret, unique
from tests.engine.oracle import Oracle
from tests.engine.runner import read_records, run_streams
from tests.engine.test_sync_stack import make_run

NO_FAULTS = {"latency_ms": 0, "tail_rate": 0, "error_rate": 0, "drop_rate": 0, "truncate_rate": 0,
             "empty_page_rate": 0, "retry_after_rate": 0.5, "path_prefix": ""}


@pytest.fixture(scope="module")
def oracle(stack: RunningStack) -> Oracle:
    if not stack.env.graph_url:
        pytest.skip("the Graph emulator is not part of this stack")
    return Oracle(stack)


@pytest.fixture()
def graph_admin(stack: RunningStack) -> Iterator[RunningStack]:
    """Tests here change emulator-wide knobs; always put them back."""
    try:
        yield stack
    finally:
        stack.admin.graph("PATCH", "/settings", {"faults": NO_FAULTS, "public_base_url": None,
                                                 "throttle": {"enabled": False, "scale": 1.0, "budget_scale": 1.0}})
        stack.admin.graph("POST", "/throttle/reset")


async def test_faults_lose_and_repeat_nothing(stack: RunningStack, workload_env: None, oracle: Oracle,
                                              graph_admin: RunningStack) -> None:
    expected = {(g, i) for g in oracle.ids("/groups") for i in oracle.ids(f"/groups/{g}/members")}
    stack.admin.graph("POST", "/counters/reset")
    stack.admin.graph("PATCH", "/settings", {"faults": {
        "seed": 11, "error_rate": 0.25, "drop_rate": 0.2, "truncate_rate": 0.2, "empty_page_rate": 0.3,
        "retry_after_rate": 0.5, "path_prefix": "/groups"}})
    settings = load_settings(engine_environ(stack, GRAPH_MAX_ATTEMPTS="10"))
    try:
        results = await run_streams(settings, make_run(stack), ["group_member"])
        parts = results["group_member"]
        assert all(p["status"] == "ok" for p in parts), [p for p in parts if p["status"] != "ok"][:2]
        rows: list[tuple[str, str]] = []
        for p in parts:
            assert p["blob_path"]
            rows += [(r["group_id"], r["id"]) for r in await read_records(settings, p["blob_path"])]
    finally:
        await close_engines()
    counters = stack.admin.graph("GET", "/counters")
    assert counters["faults"].get("drop", 0) > 0 and counters["faults"].get("truncate", 0) > 0
    assert counters["faults"].get("503", 0) + counters["faults"].get("504", 0) > 0
    assert sum(p["retries"] for p in parts) > 0
    # Partitions count the 503s they met (the parent listing met the others).
    assert 0 < sum(p["throttled"] for p in parts) <= counters["faults"].get("503", 0)
    assert not [k for k, n in Counter(rows).items() if n > 1]
    assert set(rows) == expected


async def test_client_retries_mid_pagination_without_gaps(stack: RunningStack, workload_env: None, oracle: Oracle,
                                                          graph_admin: RunningStack) -> None:
    """Small pages (6 of them), each page's URL failing now and then: ids come out complete and in order. The
    seed is one whose first answer to the first page is a fault, so the run always meets at least one (the other
    pages' URLs carry skiptokens signed with the stack's own key, so their draws differ from stack to stack)."""
    expected = oracle.ids("/users?$top=5&$select=id")
    knobs: dict[str, Any] = {"error_rate": 0.3, "drop_rate": 0.2, "truncate_rate": 0.2, "retry_after_rate": 0.0,
                             "path_prefix": "/users"}
    seed = next(n for n in range(1_000) if all(
        faults.decide(FaultSettings(seed=n, **knobs), "GET", first, 0).any
        for first in ("/users?$top=5&$select=id", "/users?%24top=5&%24select=id")))
    stack.admin.graph("PATCH", "/settings", {"faults": {"seed": seed, **knobs}})
    settings = load_settings(engine_environ(stack, GRAPH_MAX_ATTEMPTS="12"))
    try:
        engine = await get_engine(settings)
        stats = RequestStats()
        ids = [r["id"] async for page in engine.graph.pages(f"{settings.graph_root}/users?$top=5&$select=id",
                                                            stack.env.tenant_id, spec=CATALOG["users"],
                                                            parent_scoped=False, stats=stats)
               for r in page.records]
    finally:
        await close_engines()
    assert ids == expected and len(ids) > 5
    assert stats.pages == -(-len(expected) // 5) and stats.retries > 0
    assert stats.requests == stats.pages + stats.retries


async def test_throttling_is_waited_out(stack: RunningStack, workload_env: None, oracle: Oracle,
                                        graph_admin: RunningStack) -> None:
    """Budgets so small that concurrent requests must meet 429s: one RU per directory window, one report request
    per reports window. Every partition still completes with exactly the emulator's records."""
    expected_owners = {(g, i) for g in oracle.ids("/groups") for i in oracle.ids(f"/groups/{g}/owners")}
    expected_audits = set(oracle.ids("/auditLogs/directoryAudits"))
    expected_signins = set(oracle.ids("/auditLogs/signIns"))
    stack.admin.graph("POST", "/throttle/reset")
    stack.admin.graph("POST", "/counters/reset")
    stack.admin.graph("PATCH", "/settings", {"throttle": {"enabled": True, "scale": 0.01, "budget_scale": 1e-6}})
    settings = load_settings(engine_environ(stack, GRAPH_MAX_ATTEMPTS="20"))
    run = make_run(stack)
    try:
        results = await run_streams(settings, run, ["group_owner"])
        reports = await asyncio.gather(sync_partition(settings, run, "audit_logs_directory", None),
                                       sync_partition(settings, run, "audit_logs_signins", None))
        owners: set[tuple[str, str]] = set()
        for p in results["group_owner"]:
            assert p["status"] == "ok" and p["blob_path"], p
            owners.update((r["group_id"], r["id"]) for r in await read_records(settings, p["blob_path"]))
        assert all(r["status"] == "ok" and r["blob_path"] for r in reports), reports
        audits = {r["id"] for r in await read_records(settings, reports[0]["blob_path"] or "")}
        signins = {r["id"] for r in await read_records(settings, reports[1]["blob_path"] or "")}
    finally:
        await close_engines()
    counters = stack.admin.graph("GET", "/counters")
    throttled = sum(p["throttled"] for p in results["group_owner"]) + sum(r["throttled"] for r in reports)
    # Twelve partitions meet a one-RU bucket at once: most must wait (the two report requests usually collide
    # too, but a slow machine may space them a window apart, so they are not counted on).
    assert throttled >= 6 and counters["throttled"] >= throttled
    assert owners == expected_owners and audits == expected_audits and signins == expected_signins


@dataclass
class Listener:
    """A foreign HTTPS host: records whether anything (and any Authorization header) reached it."""

    origin: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture()
async def foreign_host(tmp_path: Path, stack: RunningStack) -> AsyncIterator[tuple[Listener, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    listener = Listener()

    async def record(request: web.Request) -> web.Response:
        listener.requests.append({"path": request.path_qs, "authorization": request.headers.get("Authorization")})
        return web.json_response({"value": [{"id": "planted"}]})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    listener.origin = f"https://127.0.0.1:{port}"
    bundle = tmp_path / "ca-bundle.pem"  # the engine trusts the foreign host's CA: only the allow-list protects
    with open(stack.env.ca_bundle, "rb") as handle:  # noqa: ASYNC230 - a few KB, once per test
        stack_ca = handle.read()
    bundle.write_bytes(stack_ca + ca.cert_pem.bytes())
    try:
        yield listener, bundle
    finally:
        await runner.cleanup()


async def test_off_host_next_link_is_refused_and_gets_no_token(stack: RunningStack, workload_env: None,
                                                               graph_admin: RunningStack,
                                                               foreign_host: tuple[Listener, Path]) -> None:
    listener, bundle = foreign_host
    stack.admin.graph("PATCH", "/settings", {"public_base_url": listener.origin,
                                             "faults": {"empty_page_rate": 1.0, "path_prefix": "/users"}})
    settings = load_settings(engine_environ(stack, CA_BUNDLE=str(bundle)))
    try:
        result = await sync_partition(settings, make_run(stack), "users", None)
    finally:
        await close_engines()
    assert result["status"] == "failed" and result["error_code"] == OffHostLinkError.code
    assert listener.origin.split("//")[1] in result["error_message"] and "skiptoken" not in result["error_message"]
    assert result["requests"] == 1 and result["blob_path"] is None
    assert listener.requests == []


async def test_missing_permission_fails_only_that_stream_and_names_it(
        stack: RunningStack, workload_env: None, oracle: Oracle, vault_writer: dict[str, Any]) -> None:
    app = stack.admin.register_app(roles=["User.Read.All"], secret=True, display_name="limited")
    name = unique("limited")
    await set_vault_secret(stack, vault_writer, name, app["secret"]["value"])
    settings = load_settings(engine_environ(stack, GRAPH_CLIENT_ID=app["client_id"], GRAPH_CLIENT_SECRET_NAME=name))
    user = oracle.ids("/users")[0]
    run = make_run(stack)
    try:
        users = await sync_partition(settings, run, "users", None)
        apps = await sync_partition(settings, run, "applications", None)
        roles = await sync_partition(settings, run, "directory_roles", None)
        mail = await sync_partition(settings, run, "mail_messages", user)
        chats = await sync_partition(settings, run, "chats", None)  # the walk over users stops at the first 403
        with pytest.raises(ParentListingError) as listing:
            await list_parents(settings, run, "chats")  # chat_messages' parents: same walk, same refusal
    finally:
        await close_engines()
    assert users["status"] == "ok" and users["records"] == len(oracle.ids("/users"))
    for result, permission in ((apps, "Application.Read.All"), (roles, "RoleManagement.Read.Directory"),
                               (mail, "Mail.ReadBasic.All"), (chats, "Chat.ReadBasic.All")):
        assert result["status"] == "failed", result
        assert result.get("failure_scope") == "stream" and result.get("retryable") is False
        assert permission in result.get("error_message", ""), result
        assert result["requests"] <= 1 + 8 + 1  # no retries: at most the listing and the walks in flight
    assert apps["requests"] == roles["requests"] == mail["requests"] == 1
    assert apps.get("error_code") == "Authorization_RequestDenied" and apps.get("request_id")
    assert "Chat.ReadBasic.All" in str(listing.value) and listing.value.code == "Forbidden"
    assert mail.get("error_code") == "ErrorAccessDenied"


async def test_a_refused_token_is_replaced_once(stack: RunningStack, workload_env: None) -> None:
    """Graph answers 401 to a revoked/expired token: the client drops it, fetches a fresh one and goes on."""
    from shared.auth import AccessToken
    from shared.graph import GraphClient, make_session

    settings = load_settings(engine_environ(stack))
    engine = await get_engine(settings)

    class RevokedFirst:
        def __init__(self) -> None:
            self.bad: AccessToken | None = AccessToken("eyJhbGciOiJub25lIn0.e30.revoked", 4_102_444_800.0, None)
            self.invalidated = 0

        async def get(self, tenant_id: str) -> AccessToken:
            return self.bad or await engine.tokens.get(tenant_id)

        def invalidate(self, tenant_id: str, token: AccessToken) -> None:
            self.invalidated += 1
            self.bad = None

        async def close(self) -> None:
            return None

    tokens = RevokedFirst()
    session = make_session(settings)
    try:
        client = GraphClient(settings, tokens, session)
        stats = RequestStats()
        body = await client.get_json(f"{settings.graph_root}/groups?$select=id", stack.env.tenant_id,
                                     spec=CATALOG["groups"], parent_scoped=False, stats=stats)
    finally:
        await session.close()
        await close_engines()
    assert body["value"] and tokens.invalidated == 1
    assert stats.requests == 2 and stats.retries == 1
