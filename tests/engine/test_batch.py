"""Pure `$batch` rules: relative item URLs, the envelope, answers correlated by id whatever their order, and which
due items share the next envelope."""

from __future__ import annotations

import base64

import orjson
import yarl

from shared.graph.batch import MAX_ITEMS, Get, _Item, answers, envelope, relative_url, take

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
