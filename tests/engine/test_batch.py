"""Pure `$batch` rules: relative item URLs, the envelope, answers correlated by id whatever their order, and which
due items share the next envelope."""

from __future__ import annotations

import asyncio
import base64

import orjson
import yarl

from shared.graph.batch import MAX_ITEMS, Get, _Item, answers, envelope, relative_url, take
from shared.graph.limiter import AdaptiveLimiter

ROOT = "https://graph.microsoft.com/v1.0"


def test_item_urls_are_relative_to_the_version_root_with_the_query_as_encoded() -> None:
    link = f"{ROOT}/users/u1/mailFolders('AAMk%2B%2F%3D')/messages/delta?%24skiptoken=a%2Bb%3D&%24top=10"
    assert relative_url(yarl.URL(link, encoded=True), ROOT) == \
        "/users/u1/mailFolders('AAMk%2B%2F%3D')/messages/delta?%24skiptoken=a%2Bb%3D&%24top=10"
    assert relative_url(yarl.URL(f"{ROOT}/users", encoded=True), ROOT) == "/users"


def test_envelope_carries_ids_methods_urls_and_headers_only_when_given() -> None:
    body = orjson.loads(envelope([("0", "/users", None), ("1", "/me/x", {"Prefer": "odata.maxpagesize=50"})]))
    assert body == {"requests": [{"id": "0", "method": "GET", "url": "/users"},
                                 {"id": "1", "method": "GET", "url": "/me/x",
                                  "headers": {"Prefer": "odata.maxpagesize=50"}}]}


def test_answers_are_found_by_id_in_any_order_and_base64_bodies_decoded() -> None:
    encoded = base64.b64encode(orjson.dumps({"value": [1]})).decode()
    got = answers({"responses": [
        {"id": "B", "status": 429, "headers": {"Retry-After": "0.249"}, "body": {"error": {"code": "x"}}},
        {"id": "a", "status": 200, "body": {"value": []}},
        {"id": "c", "status": 200, "body": encoded},
        {"status": 200}, "junk"]})
    assert set(got) == {"a", "b", "c"}
    assert got["b"].status == 429 and got["b"].headers == {"retry-after": "0.249"}
    assert got["a"].body == {"value": []} and got["c"].body == {"value": [1]}


def _item(key: str, mailbox: str | None, due: float = 0.0) -> _Item:
    url = yarl.URL(f"{ROOT}/users/{mailbox}/mailFolders/delta")
    return _Item(Get(key, str(url)), url, "/x", mailbox, due=due)


def test_an_envelope_takes_due_items_of_one_mailbox_up_to_the_cap() -> None:
    items = [_item(f"m{i}", "m") for i in range(25)] + [_item("n0", "n"), _item("late", "m", due=5.0)]
    chosen = take(items, now=1.0, per_mailbox=MAX_ITEMS)
    assert [i.get.key for i in chosen] == [f"m{i}" for i in range(MAX_ITEMS)]
    assert [i.get.key for i in take(items, now=1.0, per_mailbox=2)] == ["m0", "m1"]
    assert [i.get.key for i in take(items[25:], now=1.0, per_mailbox=4)] == ["n0"]
    assert take([_item("late", "m", due=5.0)], now=1.0, per_mailbox=4) == []


async def test_a_batch_holds_its_mailbox_slots_at_once_and_never_beyond_the_limit() -> None:
    """Envelopes of four items and lone GETs of one mailbox share its four slots: taken atomically (two envelopes
    taking slots one by one could each hold two and wait forever), never more than four in flight."""
    limiter = AdaptiveLimiter(4)
    seen: list[tuple[int, int]] = []

    async def hold(count: int) -> None:
        async with limiter.slot(count):
            for _ in range(3):
                seen.append((count, limiter.in_flight))
                await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(*(hold(4 if i % 3 == 0 else 1) for i in range(30))), timeout=10)
    assert max(n for _, n in seen) == 4 and limiter.in_flight == 0
    assert {n for c, n in seen if c == 4} == {4}  # an envelope's four slots are its own: nothing else in flight
    assert {n for c, n in seen if c == 1} >= {2, 3}  # lone GETs still share the mailbox among themselves
    seen.clear()
    limiter.throttled()  # the limit shrank below four after an envelope was built: the envelope still goes, alone
    await asyncio.wait_for(asyncio.gather(hold(4), hold(1), hold(4)), timeout=10)
    assert {n for c, n in seen if c == 4} == {4} and limiter.in_flight == 0
