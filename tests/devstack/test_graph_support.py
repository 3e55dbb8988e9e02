"""Harness for the Graph emulator tests: the real app over real HTTPS on an ephemeral port, real RS256 tokens
from the same key set the Entra emulator uses, and the demo tenant. (No tests here: shared by test_graph_*.)"""

from __future__ import annotations

import contextlib
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from devstack import ca
from devstack.graph import GraphSettings, create_app, service_of
from devstack.graph.permissions import PERMISSIONS
from devstack.graph.serve import start_https
from devstack.graph.service import GraphService
from devstack.tenant import build_tenant
from devstack.tenant.model import Record, Tenant
from devstack.tenant.sizes import TenantSizes
from devstack.tokens import GRAPH_RESOURCE, KeySet, SigningKey, TokenVerifier, access_token_claims

ALL_ROLES = sorted({role for roles in PERMISSIONS.values() for role in roles})

# Big enough that every paged endpoint spans several pages at its default or a small $top.
TEST_SIZES = TenantSizes(
    users=230, guests=10, groups=30, teams=6, members_per_group=12, channels_per_team=3, one_on_one_chats_per_user=1,
    group_chats=8, messages_per_chat=55, messages_per_mailbox=14, mailbox_skew=1.0, events_per_user=12,
    contacts_per_user=11, contact_folders_per_user=1, drive_items_per_drive=15, directory_audits=130, sign_ins=140,
    applications=12, service_principals=20, directory_roles=5, members_per_role=3, conditional_access_policies=4,
)


class Reply:
    def __init__(self, status: int, headers: Any, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    @property
    def json(self) -> Any:
        return orjson.loads(self.raw) if self.raw else None


@contextlib.asynccontextmanager
async def running_harness(root: Path, *, throttled: bool = True, **options: Any) -> AsyncIterator[GraphHarness]:
    """A started harness (a test module's fixture), stopped on exit. `throttled=False` turns Graph's throttling
    off for modules that test something else (each throttling rule has its own tests in test_graph_limits)."""
    harness = GraphHarness(root, **options)
    await harness.start()
    try:
        if not throttled:
            await harness.admin("PATCH", "/settings", {"throttle": {"enabled": False}})
        yield harness
    finally:
        await harness.stop()


class GraphHarness:
    """One emulator app serving one demo tenant; `restart()` rebuilds app and tenant from the state dir."""

    def __init__(self, root: Path, *, sizes: TenantSizes = TEST_SIZES, seed: int = 11,
                 settings: GraphSettings | None = None) -> None:
        self.root = root
        self.sizes = sizes
        self.seed = seed
        self.certs = ca.load_or_create(root / "certs")
        self.key = SigningKey.load_or_create(root / "signing-key.pem")
        self.keys = KeySet([self.key])
        self.settings = settings or GraphSettings(state_dir=root / "graph")
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.session: aiohttp.ClientSession | None = None
        self.tenant: Tenant = build_tenant(seed, sizes, root / "tenant")
        self.app: web.Application | None = None

    @property
    def service(self) -> GraphService:
        assert self.app is not None
        return service_of(self.app)

    async def start(self) -> GraphHarness:
        verifier = TokenVerifier(self.keys, tenants=[self.tenant.tenant_id])
        self.app = create_app(tenant=self.tenant, verifier=verifier, settings=self.settings)
        self.runner, self.port = await start_https(self.app, self.certs.server_ssl_context(), port=self.port)
        if self.session is None:
            ctx = ssl.create_default_context(cafile=str(self.certs.ca_bundle))
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=64), trust_env=False,
                                                 auto_decompress=True)
        return self

    async def stop(self, *, close_session: bool = True) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if close_session and self.session is not None:
            await self.session.close()
            self.session = None

    async def restart(self) -> None:
        """A new process's view: new app, new tenant object, same state dir and port."""
        await self.stop(close_session=False)
        self.tenant = build_tenant(self.seed, self.sizes, self.root / "tenant")
        await self.start()

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def token(self, roles: list[str] | None = None, *, lifetime: int = 3600, now: int | None = None,
              audience: str = GRAPH_RESOURCE, tenant_id: str | None = None, app_id: str | None = None) -> str:
        claims = access_token_claims(
            tenant_id=tenant_id or self.tenant.tenant_id, client_id=app_id or "11111111-2222-3333-4444-555555555555",
            object_id=str(uuid.uuid4()), audience=audience, roles=ALL_ROLES if roles is None else roles,
            lifetime_seconds=lifetime, now=now if now is not None else int(time.time()),
        )
        return self.key.sign(claims)

    async def get(self, url: str, *, token: str | None = None, roles: list[str] | None = None,
                  headers: dict[str, str] | None = None) -> Reply:
        return await self.request("GET", url, token=token, roles=roles, headers=headers)

    async def request(self, method: str, url: str, *, token: str | None = None, roles: list[str] | None = None,
                      headers: dict[str, str] | None = None, body: Any = None) -> Reply:
        assert self.session is not None
        full = url if url.startswith("https://") else f"{self.base}/v1.0{url}"
        hdrs = {"Authorization": f"Bearer {token or self.token(roles)}"}
        if token == "":
            hdrs = {}
        hdrs.update(headers or {})
        data = orjson.dumps(body) if body is not None else None
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        async with self.session.request(method, full, headers=hdrs, data=data) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def admin(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        assert self.session is not None
        async with self.session.request(method, f"{self.base}/_admin{path}",
                                        data=orjson.dumps(body) if body is not None else None) as resp:
            payload = await resp.read()
            assert resp.status == expect, f"{method} {path}: {resp.status} {payload[:500]!r}"
            return orjson.loads(payload) if payload else None

    async def walk(self, url: str, **kw: Any) -> tuple[list[Record], list[dict[str, Any]]]:
        """Follow nextLinks to the end; returns every item and every page body."""
        items: list[Record] = []
        pages: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            reply = await self.get(next_url, **kw)
            assert reply.status == 200, f"{next_url}: {reply.status} {reply.raw[:400]!r}"
            body = reply.json
            pages.append(body)
            items.extend(body["value"])
            assert not ("@odata.nextLink" in body and "@odata.deltaLink" in body)
            next_url = body.get("@odata.nextLink")
            assert len(pages) < 10_000
        return items, pages

    def ids(self, kind: str, *parents: str) -> list[str]:
        coll = self.tenant.collection(kind, *parents)  # type: ignore[arg-type]
        assert coll is not None, (kind, parents)
        return [str(r["id"]) for r in coll.iter_from(0)]

    def records(self, kind: str, *parents: str) -> list[Record]:
        coll = self.tenant.collection(kind, *parents)  # type: ignore[arg-type]
        assert coll is not None, (kind, parents)
        return list(coll.iter_from(0))
