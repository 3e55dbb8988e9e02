"""Verified tokens are remembered (the RS256 check runs once per token), over real HTTPS: lifetime is still checked
on every request, forged tokens are never remembered, a key-set change forgets everything, and a `$batch`
envelope's token is checked once for all the items that carry it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from devstack.tokens import KeySet, SigningKey, TokenVerifier
from tests.devstack.test_graph_support import GraphHarness, Reply, running_harness

pytestmark = pytest.mark.timeout(240)
NOW = 1_700_000_000


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
async def graph(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphHarness]:
    async with running_harness(Path(tmp_path_factory.mktemp("graph-token-cache"))) as harness:
        yield harness


@pytest.fixture
def clock(graph: GraphHarness) -> Clock:
    """A fresh verifier (empty cache) on a clock the test moves."""
    moved = Clock(NOW)
    graph.service.verifier = TokenVerifier(graph.keys, tenants=[graph.tenant.tenant_id], clock=moved)
    return moved


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token whose RS256 signature the emulator checks, in order."""
    checked: list[str] = []
    real: Callable[..., Any] = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)  # the module attribute the verifier calls
    return checked


def error_of(reply: Reply) -> tuple[int, str, str, str]:
    """What a client sees of a 401, without the per-request ids and date."""
    body = reply.json
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    return reply.status, body["error"]["code"], body["error"]["message"], reply.headers["WWW-Authenticate"]


async def test_a_remembered_token_that_expires_is_refused_like_any_expired_token(
    graph: GraphHarness, clock: Clock, signature_checks: list[str]
) -> None:
    token = graph.token(lifetime=60, now=NOW)
    for _ in range(3):
        assert (await graph.get("/users?$top=1", token=token)).status == 200
    assert signature_checks == [token]  # checked once, then remembered

    clock.now = NOW + 60
    remembered = await graph.get("/users?$top=1", token=token)
    never_seen = await graph.get("/users?$top=1", token=graph.token(lifetime=60, now=NOW))
    assert error_of(remembered) == error_of(never_seen)
    assert error_of(remembered)[:3] == (401, "InvalidAuthenticationToken",
                                        "Lifetime validation failed, the token is expired.")
    assert (await graph.get("/users?$top=1", token=token)).status == 401

    clock.now = NOW - 1  # before nbf: the remembered token is not valid yet either
    early = await graph.get("/users?$top=1", token=token)
    assert error_of(early)[:3] == (401, "InvalidAuthenticationToken",
                                   "Lifetime validation failed, the token is not yet valid.")


@pytest.mark.parametrize("case", ["known kid, other key", "unknown kid"])
async def test_a_token_signed_by_an_unknown_key_is_refused_every_time(
    graph: GraphHarness, clock: Clock, signature_checks: list[str], case: str
) -> None:
    stranger = SigningKey.generate()
    claims = jwt.decode(graph.token(now=NOW), options={"verify_signature": False})
    signature_checks.clear()
    if case == "unknown kid":
        forged = stranger.sign(claims)
    else:
        forged = jwt.encode(claims, stranger.private_key, algorithm="RS256",
                            headers={"kid": graph.key.kid, "x5t": graph.key.kid})
    for _ in range(3):
        reply = await graph.get("/users?$top=1", token=forged)
        assert error_of(reply)[:3] == (401, "InvalidAuthenticationToken",
                                       "Access token validation failure. Invalid signature.")
    # a forged token with a published kid reaches the signature check every time: it was never remembered
    assert signature_checks == ([forged] * 3 if case == "known kid, other key" else [])
    assert (await graph.get("/users?$top=1", token=graph.token(now=NOW))).status == 200


async def test_a_key_set_change_forgets_remembered_tokens(graph: GraphHarness, signature_checks: list[str]) -> None:
    keys = KeySet([graph.key])
    graph.service.verifier = TokenVerifier(keys, tenants=[graph.tenant.tenant_id], clock=Clock(NOW))
    token = graph.token(now=NOW)
    assert (await graph.get("/users?$top=1", token=token)).status == 200
    assert (await graph.get("/users?$top=1", token=token)).status == 200
    assert signature_checks == [token]
    keys.rotate(SigningKey.generate())
    assert (await graph.get("/users?$top=1", token=token)).status == 200  # still published: valid, checked again
    assert signature_checks == [token, token]


def batch_items(graph: GraphHarness) -> list[dict[str, Any]]:
    user = graph.ids("users")[0]
    return [
        {"id": "1", "method": "GET", "url": "/users?$top=1"},
        {"id": "2", "method": "GET", "url": f"/users/{user}"},
        {"id": "3", "method": "GET", "url": "/groups?$top=1"},
    ]


async def test_a_batch_envelope_token_is_checked_once_for_its_items(
    graph: GraphHarness, clock: Clock, signature_checks: list[str]
) -> None:
    token = graph.token(lifetime=60, now=NOW)
    reply = await graph.request("POST", "/$batch", token=token, body={"requests": batch_items(graph)})
    assert reply.status == 200
    assert sorted(r["status"] for r in reply.json["responses"]) == [200, 200, 200]
    assert signature_checks == [token]

    # an item with a token of its own is judged by that token
    own = [*batch_items(graph), {"id": "4", "method": "GET", "url": "/users?$top=1",
                                 "headers": {"Authorization": "Bearer not-a-jwt"}}]
    reply = await graph.request("POST", "/$batch", token=token, body={"requests": own})
    by_id = {r["id"]: r for r in reply.json["responses"]}
    assert {k: r["status"] for k, r in by_id.items()} == {"1": 200, "2": 200, "3": 200, "4": 401}
    assert by_id["4"]["body"]["error"]["message"].startswith("IDX14100")

    # once the envelope's token expires, every item carrying it is refused as before, each in its own response
    clock.now = NOW + 60
    reply = await graph.request("POST", "/$batch", token=token, body={"requests": batch_items(graph)})
    assert reply.status == 200
    for item in reply.json["responses"]:
        assert item["status"] == 401
        assert item["body"]["error"]["code"] == "InvalidAuthenticationToken"
        assert item["body"]["error"]["message"] == "Lifetime validation failed, the token is expired."
        assert item["headers"]["WWW-Authenticate"].startswith("Bearer ")
    assert signature_checks == [token]
