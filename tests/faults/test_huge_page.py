"""The huge-page knob of the Graph emulator and the engine's page-size bound (GRAPH_MAX_PAGE_MB), through real
HTTPS: requests for the emulator's own face, the product's GraphClient (aiohttp) for the bound."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from faultmatrix.lab import Lab, app_settings
from localrun.settings import applied
from shared.config import load_settings
from shared.graph import GraphRequestError, RequestStats
from shared.runtime import close_engines, get_engine
from shared.streams import CATALOG

PAGE = "/users?$top=5"


@pytest.fixture()
def knobs(lab: Lab) -> Iterator[Lab]:
    lab.reset_faults()
    lab.admin("graph", "POST", "/counters/reset")
    try:
        yield lab
    finally:
        lab.reset_faults()


@pytest.fixture()
def graph_get(lab: Lab) -> Any:
    token = lab.token(*_reader_app(lab))

    def get(path: str, stream: bool = False, **headers: str) -> Any:
        assert lab.env.graph_url
        return lab.http.get(f"{lab.env.graph_url}/v1.0{path}", timeout=60, stream=stream,
                            headers={"Authorization": f"Bearer {token}", **headers})
    return get


def _reader_app(lab: Lab) -> tuple[str, str]:
    app = lab.register_app("huge page reader", ["User.Read.All", "GroupMember.Read.All"])
    return app["client_id"], app["secret"]["value"]


def _huge(lab: Lab, size: int, *, gzip_it: bool = True, prefix: str = "/users") -> None:
    lab.graph_settings({"faults": {"huge_page_bytes": size, "huge_page_gzip": gzip_it, "path_prefix": prefix}})


@pytest.mark.parametrize("gzip_it", [True, False], ids=["gzip-chunked", "identity-content-length"])
def test_emulator_pads_a_page_to_the_size_asked(knobs: Lab, graph_get: Any, gzip_it: bool) -> None:
    plain = graph_get(PAGE).json()
    _huge(knobs, 3_000_000, gzip_it=gzip_it)
    resp = graph_get(PAGE, **{"Accept-Encoding": "gzip"})
    assert resp.status_code == 200
    if gzip_it:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in resp.headers
    else:
        assert "Content-Encoding" not in resp.headers
        assert resp.headers["Content-Length"] == "3000000"
    assert len(resp.content) == 3_000_000
    page = orjson.loads(resp.content)
    assert [r["id"] for r in page["value"]] == [r["id"] for r in plain["value"]]
    assert {k: v for k, v in page.items() if k != "value"} == {k: v for k, v in plain.items() if k != "value"}
    assert all(r == {**p, "padding": r["padding"]} for r, p in zip(page["value"], plain["value"], strict=True))
    assert knobs.counters()["faults"]["huge_page"] == 1
    # another path, and an empty page, are left alone
    assert graph_get("/groups?$top=5").headers.get("Content-Encoding") in ("gzip", None)
    assert len(graph_get("/groups?$top=5").content) < 100_000
    empty = graph_get("/users?$filter=displayName eq 'nobody at all'")
    assert empty.json()["value"] == [] and knobs.counters()["faults"]["huge_page"] == 1


def test_a_gzip_page_inflates_to_its_size(knobs: Lab, graph_get: Any) -> None:
    """What travels is small; what a client holds after inflating it is the page size (a bomb for `read()`)."""
    _huge(knobs, 20_000_000)
    resp = graph_get(PAGE, stream=True, **{"Accept-Encoding": "gzip"})
    wire = resp.raw.read(decode_content=False)
    assert len(wire) < 1_000_000
    assert len(gzip.decompress(wire)) == 20_000_000


@pytest.fixture()
async def bounded(lab: Lab) -> AsyncIterator[dict[str, str]]:
    settings = app_settings(lab, "unused", {"GRAPH_MAX_PAGE_MB": "1"})
    with applied(settings):
        yield settings
    await close_engines()


async def _get_page(settings_env: dict[str, str], lab: Lab) -> tuple[dict[str, Any], RequestStats]:
    settings = load_settings(settings_env)
    engine = await get_engine(settings)
    stats = RequestStats()
    body = await engine.graph.get_json(f"{settings.graph_root}{PAGE}", lab.env.tenant_id, spec=CATALOG["users"],
                                       parent_scoped=False, stats=stats)
    return body, stats


@pytest.mark.parametrize("gzip_it", [True, False], ids=["counted-while-inflating", "refused-by-content-length"])
async def test_a_page_over_the_bound_fails_once_and_names_the_setting(knobs: Lab, bounded: dict[str, str],
                                                                       gzip_it: bool) -> None:
    _huge(knobs, 3 * 1024 * 1024, gzip_it=gzip_it)
    with pytest.raises(GraphRequestError) as caught:
        await _get_page(bounded, knobs)
    error = caught.value
    assert error.decision.code == "ResponseTooLarge"
    assert not error.retryable and error.attempts == 1
    assert "GRAPH_MAX_PAGE_MB=1" in str(error)
    assert knobs.counters()["faults"]["huge_page"] == 1, "a page too large is not asked for again"


async def test_a_page_under_the_bound_is_read_whole(knobs: Lab, bounded: dict[str, str]) -> None:
    _huge(knobs, 1024 * 1024 - 4096)
    body, stats = await _get_page(bounded, knobs)
    assert stats.requests == 1 and stats.retries == 0
    assert body["value"] and all(len(r["padding"]) > 100_000 for r in body["value"])
