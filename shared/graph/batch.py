"""JSON batching (`POST {root}/$batch`): many small GETs of one mailbox in one round trip, each item with its own fate.

Graph answers a batch with a 200 envelope whatever happened inside; every item is throttled, authorised and failed
on its own and the answers come back in any order (json-batching.md). The SDKs do not retry inner items; here
every item is classified exactly like a lone GET (`errors.classify`), an inner 429/503/504 waits for its OWN
Retry-After (Graph sends decimals there, e.g. 0.249) and goes again in a later batch, or alone as a plain GET
when it is the only one due; an inner 401 invalidates the token the envelope carried and retries once.

Outlook runs at most four items of a batch against one mailbox at a time, which is the documented per-mailbox
limit: an envelope therefore holds min(items, 4) of that mailbox's limiter slots while it is in flight, so
batches and lone GETs of one mailbox together never exceed four. When throttling shrank the limiter below four,
an envelope carries only as many items as the limiter allows (Graph would otherwise run four anyway).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import yarl

from shared.graph import jsonbody
from shared.graph.client import OUTLOOK_CONCURRENCY, GraphClient, GraphRequestError, RequestStats, mailbox_of
from shared.graph.errors import Action, Decision, classify, parse_error_body
from shared.graph.limiter import AdaptiveLimiter
from shared.graph.links import allowed_url
from shared.graph.retry import parse_retry_after
from shared.streams import StreamSpec

log = logging.getLogger("shared.graph")

MAX_ITEMS = 20
"""Graph's limit of requests per batch."""
_OWN_RETRY_AFTER = frozenset({429, 503, 504})
_THROTTLE = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Get:
    """One GET to batch: `key` is the caller's name for it (unique per call), `link` an absolute URL."""

    key: str
    link: str
    headers: Mapping[str, str] | None = None


Outcome = dict[str, Any] | GraphRequestError
"""The parsed body of a 2xx answer, or the error that ended the item (classified like a lone GET's)."""


@dataclass(slots=True)
class _Item:
    get: Get
    url: yarl.URL
    relative: str
    mailbox: str | None
    attempt: int = 0
    reauthed: bool = False
    due: float = 0.0


@dataclass(frozen=True, slots=True)
class InnerAnswer:
    status: int
    headers: dict[str, str]
    """Lower-cased names."""
    body: Any


def relative_url(url: yarl.URL, graph_root: str) -> str:
    """The item URL Graph wants: relative to the version root, query kept exactly as encoded."""
    root_path = yarl.URL(graph_root, encoded=True).raw_path.rstrip("/")
    path = url.raw_path[len(root_path):] if url.raw_path.startswith(root_path + "/") else url.raw_path
    return f"{path}?{url.raw_query_string}" if url.raw_query_string else path


def envelope(items: Sequence[tuple[str, str, Mapping[str, str] | None]]) -> bytes:
    """The request body for (id, relative url, headers) triples."""
    requests: list[dict[str, Any]] = []
    for item_id, url, headers in items:
        entry: dict[str, Any] = {"id": item_id, "method": "GET", "url": url}
        if headers:
            entry["headers"] = dict(headers)
        requests.append(entry)
    return orjson.dumps({"requests": requests})


def answers(body: Mapping[str, Any]) -> dict[str, InnerAnswer]:
    """Inner answers by lower-cased id (ids are case-insensitive; the order is Graph's, not ours)."""
    out: dict[str, InnerAnswer] = {}
    responses = body.get("responses")
    for entry in responses if isinstance(responses, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        status = entry.get("status")
        raw_headers = entry.get("headers")
        headers = {str(k).lower(): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
        out[entry["id"].lower()] = InnerAnswer(status if isinstance(status, int) else 0, headers,
                                               _inner_body(entry.get("body")))
    return out


def _inner_body(body: Any) -> Any:
    """A JSON body as Graph inlines it, or a base64 string (how Graph returns non-JSON or encoded bodies)."""
    if isinstance(body, str):
        try:
            return jsonbody.loads(base64.b64decode(body, validate=True))
        except (ValueError, orjson.JSONDecodeError):
            return None
    return body


def take(pending: Sequence[_Item], now: float, per_mailbox: int) -> list[_Item]:
    """The items of the next envelope: due ones of one mailbox (the first due item's), at most `per_mailbox` and
    MAX_ITEMS of them."""
    due = [i for i in pending if i.due <= now]
    if not due:
        return []
    mailbox = due[0].mailbox
    return [i for i in due if i.mailbox == mailbox][:max(1, min(MAX_ITEMS, per_mailbox))]


@dataclass(slots=True)
class BatchReader:
    """GETs many links in as few round trips as Graph's batch rules allow, for one stream's partition."""

    client: GraphClient
    graph_root: str
    tenant_id: str
    spec: StreamSpec
    parent_scoped: bool
    stats: RequestStats

    async def get_many(self, gets: Sequence[Get]) -> dict[str, Outcome]:
        """Every link's outcome by key. Every link passes the host allow-list before any token is attached
        (OffHostLinkError otherwise, like a lone GET); a failure of one item never fails another."""
        items: list[_Item] = []
        for g in gets:
            url = allowed_url(g.link, self.graph_root)
            mailbox = mailbox_of(url) if self.spec.workload == "outlook" else None
            items.append(_Item(g, url, relative_url(url, self.graph_root), mailbox))
        outcomes: dict[str, Outcome] = {}
        loop = asyncio.get_running_loop()
        pending = items
        while pending:
            now = loop.time()
            nxt = min(i.due for i in pending)
            if nxt > now:
                await asyncio.sleep(nxt - now)
                continue
            first = next(i for i in pending if i.due <= now)
            limiter = self.client.limiter(self.tenant_id, self.spec.workload, first.mailbox)
            cap = MAX_ITEMS if limiter.limit >= OUTLOOK_CONCURRENCY or first.mailbox is None else int(limiter.limit)
            chosen = take(pending, now, cap)
            if len(chosen) == 1:
                await self._alone(chosen[0], outcomes)
            else:
                await self._send(chosen, limiter, outcomes)
            pending = [i for i in pending if i.get.key not in outcomes]
        return {g.key: outcomes[g.key] for g in gets}

    async def _alone(self, item: _Item, outcomes: dict[str, Outcome]) -> None:
        """An item due on its own (often a retry) goes as a plain GET with the lone GET's retry loop: an envelope
        around one request would only add bytes."""
        try:
            outcomes[item.get.key] = await self.client.get_json(
                item.get.link, self.tenant_id, spec=self.spec, parent_scoped=self.parent_scoped, stats=self.stats,
                headers=item.get.headers)
        except GraphRequestError as exc:
            outcomes[item.get.key] = exc

    async def _send(self, chosen: list[_Item], limiter: AdaptiveLimiter, outcomes: dict[str, Outcome]) -> None:
        ids = {f"{n}": item for n, item in enumerate(chosen)}
        payload = envelope([(n, item.relative, item.get.headers) for n, item in ids.items()])
        for item in chosen:
            item.attempt += 1
        slots = min(len(chosen), OUTLOOK_CONCURRENCY) if chosen[0].mailbox is not None else 1
        self.stats.batch_items += len(chosen)
        try:
            body, token = await self.client.post_batch(payload, self.tenant_id, spec=self.spec,
                                                       parent_scoped=self.parent_scoped, stats=self.stats,
                                                       mailbox=chosen[0].mailbox, slots=slots)
        except GraphRequestError as exc:
            for item in chosen:  # the envelope failed for good (after its own retries): so did every item in it
                outcomes[item.get.key] = exc
            return
        got = answers(body)
        now = asyncio.get_running_loop().time()
        invalidated = False
        for n, item in ids.items():
            answer = got.get(n)
            if answer is not None and 200 <= answer.status < 300 and isinstance(answer.body, dict):
                outcomes[item.get.key] = answer.body
                continue
            if answer is None or 200 <= answer.status < 300:
                status = answer.status if answer is not None else 0
                decision = Decision(Action.RETRY, "IncompleteBatchAnswer",
                                    "the batch answer lacked this item or its JSON body")
                request_id = client_request_id = retry_after = None
            else:
                status = answer.status
                err = parse_error_body(answer.body if isinstance(answer.body, dict) else None)
                decision = classify(status, err, self.spec, parent_scoped=self.parent_scoped,
                                    granted_roles=token.roles)
                request_id = answer.headers.get("request-id") or err.request_id
                client_request_id = answer.headers.get("client-request-id") or err.client_request_id
                retry_after = parse_retry_after(answer.headers.get("retry-after"))
                if status in _THROTTLE:
                    self.stats.throttled += 1
                    self.client.throttled(self.tenant_id, self.spec, limiter, retry_after, item.attempt)
            log.log(logging.INFO if decision.action is Action.SKIP_PARENT else logging.WARNING,
                    "graph batch item failed: status=%s code=%s action=%s attempt=%d/%d path=%s request-id=%s",
                    status, decision.code, decision.action.value, item.attempt, self.client.policy.max_attempts,
                    item.url.path, request_id)
            if decision.action is Action.REAUTH and not item.reauthed:
                item.reauthed = True
                if not invalidated:
                    self.client.invalidate(self.tenant_id, token)
                    invalidated = True
                self.stats.retries += 1
                item.due = now
                continue
            if decision.action is Action.RETRY and self.client.policy.can_retry(item.attempt):
                wait = self.client.policy.delay(item.attempt, retry_after if status in _OWN_RETRY_AFTER else None)
                self.stats.retries += 1
                item.due = now + wait
                continue
            outcomes[item.get.key] = GraphRequestError(status, decision, request_id, client_request_id,
                                                             item.attempt, retryable=decision.action is Action.RETRY)
