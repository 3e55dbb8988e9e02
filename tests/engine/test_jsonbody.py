"""Graph pages are parsed with the cyclic collector paused, and it is always left as it was found."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from shared.graph import jsonbody

PAGE = orjson.dumps({"value": [{"id": str(i), "toRecipients": [{"emailAddress": {"name": "n", "address": "a"}}]}
                               for i in range(5_000)]})


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """Generations of the collections that start while the test runs."""
    seen: list[int] = []

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(callback)
    try:
        yield seen
    finally:
        gc.callbacks.remove(callback)


def test_a_page_parses_without_collections(collections: list[int]) -> None:
    orjson.loads(PAGE)
    assert collections, "the plain parse of 15,000 containers should have triggered the collector"
    collections.clear()
    parsed = jsonbody.loads(PAGE)
    during = len(collections)  # read before any new container: the next one may start the deferred young collection
    assert during == 0
    assert parsed == orjson.loads(PAGE)
    assert gc.isenabled()


def test_the_collector_is_back_after_a_bad_body() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        jsonbody.loads(b'{"value": [')
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        assert jsonbody.loads(b'{"a": 1}') == {"a": 1}
        assert not gc.isenabled()
    finally:
        gc.enable()
