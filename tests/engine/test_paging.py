"""Paging logic of GraphClient.pages without a server: order, prefetch, early exit, errors after a page."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.config import load_settings
from shared.graph import GraphClient, OffHostLinkError, RequestStats
from shared.streams import CATALOG
from tests.engine.test_config import BASE

ROOT = "https://graph.microsoft.com/v1.0"


class CannedClient(GraphClient):
    """get_json answers from a dict of URL -> body (or exception); everything else is the real class."""

    def __init__(self, bodies: dict[str, Any]) -> None:
        super().__init__(load_settings(BASE), tokens=None, session=None)  # type: ignore[arg-type]
        self.bodies = bodies
        self.started: list[str] = []
        self.cancelled: list[str] = []

    async def get_json(self, link: str, tenant_id: str, **_: Any) -> dict[str, Any]:
        self.started.append(link)
        try:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled.append(link)
            raise
        body = self.bodies[link]
        if isinstance(body, Exception):
            raise body
        return dict(body)


def chain(n: int) -> dict[str, Any]:
    bodies: dict[str, Any] = {}
    for i in range(n):
        page: dict[str, Any] = {"value": [{"id": f"{i}-{j}"} for j in range(3)]}
        if i + 1 < n:
            page["@odata.nextLink"] = f"{ROOT}/users?$skiptoken={i + 1}"
        else:
            page["@odata.deltaLink"] = f"{ROOT}/users/delta?$deltatoken=x"
        bodies[f"{ROOT}/users?$skiptoken={i}" if i else f"{ROOT}/users"] = page
    return bodies


def pages_of(client: GraphClient, stats: RequestStats, url: str = f"{ROOT}/users") -> Any:
    return client.pages(url, "t", spec=CATALOG["users"], parent_scoped=False, stats=stats)


async def test_pages_arrive_in_order_with_links() -> None:
    client = CannedClient(chain(4))
    stats = RequestStats()
    pages = [p async for p in pages_of(client, stats)]
    assert [r["id"] for p in pages for r in p.records] == [f"{i}-{j}" for i in range(4) for j in range(3)]
    assert pages[-1].delta_link and pages[-1].next_link is None and stats.pages == 4


async def test_the_next_page_is_requested_before_the_caller_finishes_the_current_one() -> None:
    client = CannedClient(chain(3))
    iterator = pages_of(client, RequestStats()).__aiter__()
    await iterator.__anext__()
    await asyncio.sleep(0)  # the caller's first await (e.g. its blob write) lets the prefetch start
    assert client.started == [f"{ROOT}/users", f"{ROOT}/users?$skiptoken=1"]
    await iterator.aclose()
    assert client.cancelled == [f"{ROOT}/users?$skiptoken=1"]


async def test_an_error_on_a_later_page_surfaces_after_the_good_pages() -> None:
    bodies = chain(3)
    bodies[f"{ROOT}/users?$skiptoken=2"] = OffHostLinkError("refused")
    client = CannedClient(bodies)
    seen: list[str] = []
    with pytest.raises(OffHostLinkError):
        async for page in pages_of(client, RequestStats()):
            seen += [r["id"] for r in page.records]
    assert seen == [f"{i}-{j}" for i in range(2) for j in range(3)]


async def test_a_single_entity_body_is_one_record() -> None:
    client = CannedClient({f"{ROOT}/users/1": {"id": "1", "displayName": "A"}})
    pages = [p async for p in pages_of(client, RequestStats(), f"{ROOT}/users/1")]
    assert pages[0].records == [{"id": "1", "displayName": "A"}]


def test_outlook_requests_are_limited_per_mailbox() -> None:
    import yarl

    from shared.graph.client import mailbox_of

    client = CannedClient({})
    assert mailbox_of(yarl.URL(f"{ROOT}/users/ABC/messages?$top=10", encoded=True)) == "abc"
    assert mailbox_of(yarl.URL(f"{ROOT}/groups", encoded=True)) is None
    a = client.limiter("t", "outlook", "abc")
    assert a is client.limiter("t", "outlook", "abc") and a is not client.limiter("t", "outlook", "def")
    assert a.maximum == 4 and client.limiter("t", "directory").maximum == 64
