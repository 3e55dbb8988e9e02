"""`$batch` through the real client and the emulator: an inner 429 waits for its own (decimal) Retry-After and goes
again alone, an expired stored link answers 410 inside a batch (a resync), an inner 401 replaces the token once,
inner errors are classified exactly like lone GETs, and a nextLink to another host inside an inner body never gets
a token."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from shared.auth import AccessToken
from shared.config import Settings, load_settings
from shared.graph import Action, GraphClient, GraphRequestError, OffHostLinkError, RequestStats, make_session
from shared.graph.batch import BatchReader, Get
from shared.runtime import close_engines, get_engine
from shared.streams import CATALOG
from shared.sync import sync_partition
from tests.conftest import RunningStack
from tests.engine import test_resilience_stack as resilience
from tests.engine.conftest import engine_environ
from tests.engine.oracle import Oracle
from tests.engine.test_resilience_stack import Listener
from tests.engine.test_sync_stack import make_run

MAIL = CATALOG["mail_messages"]
graph_admin = resilience.graph_admin  # fixtures shared with the resilience tests
foreign_host = resilience.foreign_host


def q(value: str) -> str:
    return quote(value, safe="")


@pytest.fixture(scope="module")
def oracle(stack: RunningStack) -> Oracle:
    return Oracle(stack)


def mailbox_users(oracle: Oracle) -> list[str]:
    return [u for u in oracle.ids("/users") if oracle.status(f"/users/{q(u)}/mailFolders") == 200]


async def reader(settings: Settings, stats: RequestStats) -> BatchReader:
    engine = await get_engine(settings)
    return BatchReader(engine.graph, settings.graph_root, settings.tenant_ids[0], MAIL, parent_scoped=True,
                       stats=stats)


async def test_inner_429_waits_for_its_own_decimal_retry_after_and_goes_again_alone(
        stack: RunningStack, engine_settings: Settings, oracle: Oracle, graph_admin: RunningStack) -> None:
    user = mailbox_users(oracle)[0]
    # Outlook's 10,000 requests per 10 minutes shrunk to 5 per 0.6 s: the sixth item of a batch is answered 429
    # with a Retry-After in decimal seconds (as Graph sends them inside batches).
    stack.admin.graph("PATCH", "/settings", {"throttle": {"enabled": True, "scale": 0.001, "budget_scale": 0.0005}})
    stack.admin.graph("POST", "/throttle/reset")
    stack.admin.graph("POST", "/counters/reset")
    root = f"{engine_settings.graph_root}/users/{q(user)}"
    gets = [Get(f"k{i}", f"{root}/mailFolders?$top={i + 1}") for i in range(6)]
    stats = RequestStats()
    out = await (await reader(engine_settings, stats)).get_many(gets)
    counters = stack.admin.graph("GET", "/counters")
    assert all(isinstance(v, dict) and "value" in v for v in out.values()), out
    assert counters["throttled_by_scope"] == {"outlook.rate": 1}
    # One envelope, then the throttled item alone once its Retry-After passed (a premature retry would meet
    # another 429 and need a third round trip).
    assert counters["batches"] == 1 and counters["batch_items"] == 6
    assert stats.requests == 2 and stats.batch_items == 6 and stats.throttled == 1 and stats.retries == 1
    assert counters["requests"] - counters["batch_items"] == 2


async def test_expired_stored_link_inside_a_batch_is_a_resync_and_spares_the_other_items(
        stack: RunningStack, engine_settings: Settings, oracle: Oracle) -> None:
    user = mailbox_users(oracle)[1]
    folders = oracle.ids(f"/users/{q(user)}/mailFolders")
    engine = await get_engine(engine_settings)
    stats = RequestStats()
    links = {}
    for folder in folders[:2]:
        url = f"{engine_settings.graph_root}/users/{q(user)}/mailFolders/{q(folder)}/messages/delta"
        async for page in engine.graph.pages(url, engine_settings.tenant_ids[0], spec=MAIL, parent_scoped=True,
                                             stats=stats):
            if page.delta_link:
                links[folder] = page.delta_link
    stack.admin.graph("POST", "/delta/expire", {"kind": "folderMessages", "parent_ids": [user, folders[0]]})
    out = await (await reader(engine_settings, stats)).get_many([Get(f, link) for f, link in links.items()])
    expired, kept = out[folders[0]], out[folders[1]]
    assert isinstance(expired, GraphRequestError) and expired.status == 410
    assert expired.decision.action is Action.RESYNC and not expired.retryable
    assert isinstance(kept, dict) and "@odata.deltaLink" in kept


async def test_inner_errors_are_classified_like_lone_gets(stack: RunningStack, engine_settings: Settings,
                                                          oracle: Oracle) -> None:
    engine = await get_engine(engine_settings)
    tenant = engine_settings.tenant_ids[0]
    users = oracle.ids("/users")
    troubled = [u for u in users if oracle.status(f"/users/{q(u)}/mailFolders") in (403, 404)]
    assert {oracle.status(f"/users/{q(u)}/mailFolders") for u in troubled} == {403, 404}
    for user in troubled:
        root = f"{engine_settings.graph_root}/users/{q(user)}"
        links = [f"{root}/mailFolders/delta", f"{root}/contacts?$top=1"]
        out = await (await reader(engine_settings, RequestStats())).get_many([Get(link, link) for link in links])
        for link in links:
            with pytest.raises(GraphRequestError) as lone:
                await engine.graph.get_json(link, tenant, spec=MAIL, parent_scoped=True, stats=RequestStats())
            inner = out[link]
            assert isinstance(inner, GraphRequestError), inner
            assert (inner.status, inner.decision) == (lone.value.status, lone.value.decision)
            assert inner.decision.action is Action.SKIP_PARENT  # a 403 access policy or a missing mailbox


async def test_off_host_next_link_in_an_inner_body_gets_no_token(
        stack: RunningStack, workload_env: None, oracle: Oracle, graph_admin: RunningStack,
        foreign_host: tuple[Listener, Path]) -> None:
    listener, bundle = foreign_host
    user = mailbox_users(oracle)[2]
    # Every Outlook list page comes back empty with a nextLink, and nextLinks name the foreign host.
    stack.admin.graph("PATCH", "/settings", {"public_base_url": listener.origin,
                                             "faults": {"empty_page_rate": 1.0, "path_prefix": "/users"}})
    settings = load_settings(engine_environ(stack, CA_BUNDLE=str(bundle)))
    try:
        result = await sync_partition(settings, make_run(stack), "mail_messages", user)
    finally:
        await close_engines()
    assert result["status"] == "failed" and result["error_code"] == OffHostLinkError.code, result
    assert listener.origin.split("//")[1] in result["error_message"] and "skiptoken" not in result["error_message"]
    assert result["blob_path"] is None and listener.requests == []


async def test_inner_401_replaces_the_token_once_and_the_items_go_again(stack: RunningStack, workload_env: None,
                                                                       oracle: Oracle) -> None:
    """Graph authenticates every item of a batch: a refused token comes back as inner 401s, the client drops that
    token, fetches a fresh one and sends the items again."""
    settings = load_settings(engine_environ(stack))
    engine = await get_engine(settings)

    class RevokedFirst:
        def __init__(self) -> None:
            self.bad: AccessToken | None = AccessToken("eyJhbGciOiJub25lIn0.e30.revoked", 4_102_444_800.0, None)
            self.invalidated: list[str] = []

        async def get(self, tenant_id: str) -> AccessToken:
            return self.bad or await engine.tokens.get(tenant_id)

        def invalidate(self, tenant_id: str, token: AccessToken) -> None:
            self.invalidated.append(token.token)
            self.bad = None

        async def close(self) -> None:
            return None

    tokens = RevokedFirst()
    session = make_session(settings)
    user = mailbox_users(oracle)[3]
    root = f"{settings.graph_root}/users/{q(user)}"
    stack.admin.graph("POST", "/counters/reset")
    try:
        client = GraphClient(settings, tokens, session)
        stats = RequestStats()
        out = await BatchReader(client, settings.graph_root, stack.env.tenant_id, MAIL, parent_scoped=True,
                                stats=stats).get_many([Get("a", f"{root}/mailFolders/delta"),
                                                       Get("b", f"{root}/contacts?$top=1")])
    finally:
        await session.close()
        await close_engines()
    assert all(isinstance(v, dict) for v in out.values()), out
    assert tokens.invalidated == ["eyJhbGciOiJub25lIn0.e30.revoked"]
    counters = stack.admin.graph("GET", "/counters")
    # the items were refused inside the first envelope and sent again in a second one
    assert counters["by_status"].get("401") == 2 and counters["batches"] == 2
    assert stats.requests == 2 and stats.batch_items == 4 and stats.retries == 2
