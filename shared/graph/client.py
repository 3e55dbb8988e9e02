"""The Graph HTTP client: one pooled aiohttp session per event loop, shared by every partition on that loop.

Partitions are I/O bound and the Functions Python worker runs async activities on one loop, so concurrency is
cooperative: many partitions page at once over one connection pool, without threads. Every request carries a
fresh `client-request-id`; every failure is logged with Graph's `request-id` so support can trace it. Records
reach the caller only after a whole page parsed, so a retried page can neither lose nor repeat a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import yarl

from shared.auth import AccessToken, TokenProvider
from shared.config import Settings
from shared.graph import jsonbody
from shared.graph.errors import THROTTLE_STATUSES, Action, Decision, GraphErrorBody, classify, parse_error_body
from shared.graph.governor import Governor
from shared.graph.limiter import AdaptiveLimiter
from shared.graph.links import allowed_url
from shared.graph.retry import RetryPolicy, parse_retry_after
from shared.streams import StreamSpec

log = logging.getLogger("shared.graph")

# Workloads whose throttling scope is the whole tenant: one 429 pauses every partition of that workload.
_FENCED_WORKLOADS = frozenset({"directory", "reports", "policy"})


DEFAULT_CONCURRENCY = 64
OUTLOOK_CONCURRENCY = 4


def mailbox_of(url: yarl.URL) -> str | None:
    """The user segment of an Outlook path (`/v1.0/users/{id}/...`), lower-cased like Exchange compares it."""
    parts = url.raw_path.split("/")
    if len(parts) > 3 and parts[2].lower() == "users":
        return parts[3].lower()
    return None


@dataclass(slots=True)
class RequestStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    pages: int = 0
    batch_items: int = 0
    """Requests sent inside `$batch` envelopes (each envelope is one of `requests`: a round trip)."""


@dataclass(frozen=True, slots=True)
class Page:
    records: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None


@dataclass(slots=True)
class GraphRequestError(Exception):
    """A request that failed for good; `decision` says whether to skip the parent, fail the stream, etc."""

    status: int
    decision: Decision
    request_id: str | None = None
    client_request_id: str | None = None
    attempts: int = 1
    retryable: bool = field(default=False)

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.decision.code}: {self.decision.reason}"


class BodyTooLarge(Exception):
    """An answer passed the configured maximum page size; `seen` is how many bytes proved it."""

    def __init__(self, seen: int) -> None:
        super().__init__(seen)
        self.seen = seen


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> memoryview:
    """The (decompressed) body, given up as soon as it passes `limit` bytes: without a bound a hostile or runaway
    page costs the worker several times its size in memory. An announced identity-encoded length is refused before
    reading; a gzip or chunked body is counted while it streams (a small gzip body can inflate enormously)."""
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if resp.content_length is not None and resp.content_length > limit and encoding == "identity":
        raise BodyTooLarge(resp.content_length)
    buffer = io.BytesIO()
    seen = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge(seen)
        buffer.write(chunk)
    return buffer.getbuffer()  # no copy: orjson parses the buffer in place


def too_large(seen: int, max_page_mb: int) -> Decision:
    return Decision(Action.FAIL, "ResponseTooLarge",
                    f"a Graph answer passed GRAPH_MAX_PAGE_MB={max_page_mb} (at least {seen:,} bytes); "
                    "raise GRAPH_MAX_PAGE_MB or make pages smaller (SYNC_PAGE_SIZE, or page_size / select in "
                    "SYNC_STREAMS_CONFIG)")


def make_session(settings: Settings, *, limit: int = 100) -> aiohttp.ClientSession:
    """The pooled session; a custom CA bundle is trusted explicitly (env CA variables are ignored: trust_env off)."""
    context = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else \
        ssl.create_default_context()
    connector = aiohttp.TCPConnector(limit=limit, ssl=context, ttl_dns_cache=300, enable_cleanup_closed=True)
    # A read timeout bounds silence, not the whole answer: a 50 MB page that keeps streaming is fine.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=settings.request_timeout)
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False, auto_decompress=True,
        headers={"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "m365-lake/0.1"},
    )


class GraphClient:
    def __init__(
        self,
        settings: Settings,
        tokens: TokenProvider,
        session: aiohttp.ClientSession,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        governor: Governor | None = None,
    ) -> None:
        self._root = settings.graph_root
        self._max_page_mb = settings.max_page_mb
        self._tokens = tokens
        self._session = session
        self.policy = policy or RetryPolicy(max_attempts=settings.max_attempts)
        self._sleep = sleep
        self._fences: dict[tuple[str, str], float] = {}
        self._limiters: dict[tuple[str, str, str], AdaptiveLimiter] = {}
        self.governor = governor
        """Paces tenant-scoped workloads to their documented budget before Graph answers 429 (shared with the
        app's other instances through Blob); None: only the limiters and the Retry-After fence."""

    def limiter(self, tenant_id: str, workload: str, mailbox: str | None = None) -> AdaptiveLimiter:
        """Outlook limits each app+mailbox to four concurrent requests, so mailboxes get their own limiter
        capped at four; other workloads are limited per tenant."""
        key = (tenant_id, workload, mailbox or "")
        found = self._limiters.get(key)
        if found is None:
            found = self._limiters[key] = AdaptiveLimiter(OUTLOOK_CONCURRENCY if mailbox else DEFAULT_CONCURRENCY)
        return found

    async def _wait_fence(self, key: tuple[str, str]) -> None:
        loop = asyncio.get_running_loop()
        until = self._fences.get(key, 0.0)
        if until > loop.time():
            await self._sleep(until - loop.time())

    def _raise_fence(self, key: tuple[str, str], seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._fences[key] = max(self._fences.get(key, 0.0), loop.time() + seconds)

    async def get_json(
        self,
        link: str,
        tenant_id: str,
        *,
        spec: StreamSpec,
        parent_scoped: bool,
        stats: RequestStats,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """GET one page with retries. The link is checked against the Graph root before any token is attached."""
        url = allowed_url(link, self._root)
        mailbox = mailbox_of(url) if spec.workload == "outlook" else None
        body, _ = await self._send("GET", url, tenant_id, spec=spec, parent_scoped=parent_scoped, stats=stats,
                                   headers=headers, mailbox=mailbox)
        return body

    async def post_batch(self, payload: bytes, tenant_id: str, *, spec: StreamSpec, parent_scoped: bool,
                         stats: RequestStats, mailbox: str | None, slots: int) -> tuple[dict[str, Any], AccessToken]:
        """POST a `$batch` envelope with the same retries as a GET (the envelope itself can be throttled). It holds
        `slots` of `mailbox`'s limiter while in flight: Graph runs that many of its items against the mailbox at
        once. Returns the envelope and the token it carried, so an inner 401 can invalidate exactly that token."""
        url = allowed_url(self._root + "/$batch", self._root)
        return await self._send("POST", url, tenant_id, spec=spec, parent_scoped=parent_scoped, stats=stats,
                                headers={"Content-Type": "application/json"}, mailbox=mailbox, slots=slots,
                                data=payload)

    def invalidate(self, tenant_id: str, token: AccessToken) -> None:
        self._tokens.invalidate(tenant_id, token)

    def throttled(self, tenant_id: str, spec: StreamSpec, limiter: AdaptiveLimiter, retry_after: float | None,
                  attempt: int) -> None:
        """A 429/503 (of a request or of an item inside a batch): shrink the limiter; pause a tenant-wide scope."""
        limiter.throttled()
        if spec.workload in _FENCED_WORKLOADS:
            pause = retry_after if retry_after is not None else self.policy.delay(attempt, None)
            self._raise_fence((tenant_id, spec.workload), min(pause, self.policy.max_retry_after))

    async def _send(self, method: str, url: yarl.URL, tenant_id: str, *, spec: StreamSpec, parent_scoped: bool,
                    stats: RequestStats, headers: Mapping[str, str] | None, mailbox: str | None, slots: int = 1,
                    data: bytes | None = None) -> tuple[dict[str, Any], AccessToken]:
        fence_key = (tenant_id, spec.workload)
        limiter = self.limiter(tenant_id, spec.workload, mailbox)
        attempt = 0
        reauthed = False
        last: GraphRequestError | None = None
        while True:
            attempt += 1
            retry_after: float | None = None
            client_request_id = str(uuid.uuid4())
            async with limiter.slot(slots):
                if spec.workload in _FENCED_WORKLOADS:
                    # Inside the slot: a request queued behind a throttled one must see the fence it raised.
                    await self._wait_fence(fence_key)
                units = 0.0 if self.governor is None else await self.governor.acquire(
                    tenant_id, spec.workload, url.path, url.query_string)
                token = await self._tokens.get(tenant_id)
                request_headers = {"Authorization": f"Bearer {token.token}", "client-request-id": client_request_id,
                                   "return-client-request-id": "true", **(headers or {})}
                stats.requests += 1
                try:
                    async with self._session.request(method, url, headers=request_headers, data=data,
                                                     allow_redirects=False) as resp:
                        status = resp.status
                        request_id = resp.headers.get("request-id")
                        charged = resp.headers.get("x-ms-resource-unit")
                        body = await read_bounded(resp, self._max_page_mb * 1024 * 1024)
                        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    if status == 200:
                        try:
                            parsed = jsonbody.loads(body)
                        except orjson.JSONDecodeError:
                            parsed = None
                        if isinstance(parsed, dict):
                            if units and self.governor is not None:
                                self.governor.settle(tenant_id, spec.workload, units, charged)
                            await limiter.succeeded()
                            return parsed, token
                        decision = Decision(Action.RETRY, "TruncatedResponse", "the response body was not "
                                            "complete JSON")
                    else:
                        err = parse_error_body(bytes(body))
                        decision = self._decide(status, err, spec, parent_scoped, token)
                        request_id = request_id or err.request_id
                        if status in THROTTLE_STATUSES:
                            stats.throttled += 1
                            if status == 429 and units and self.governor is not None:
                                await self.governor.throttled(tenant_id, spec.workload, retry_after)
                            self.throttled(tenant_id, spec, limiter, retry_after, attempt)
                    last = GraphRequestError(status, decision, request_id, client_request_id, attempt)
                except BodyTooLarge as exc:
                    decision = too_large(exc.seen, self._max_page_mb)
                    last = GraphRequestError(status, decision, request_id, client_request_id, attempt)
                except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                    decision = Decision(Action.RETRY, type(exc).__name__, f"network error: {type(exc).__name__}")
                    last = GraphRequestError(0, decision, None, client_request_id, attempt)
            # An expected "nothing here" (no mailbox, no OneDrive) is news only at INFO; everything else warns.
            log.log(
                logging.INFO if decision.action is Action.SKIP_PARENT else logging.WARNING,
                "graph request failed: status=%s code=%s action=%s attempt=%d/%d path=%s request-id=%s "
                "client-request-id=%s", last.status, decision.code, decision.action.value, attempt,
                self.policy.max_attempts, url.path, last.request_id, client_request_id,
            )
            if decision.action is Action.REAUTH and not reauthed:
                reauthed = True
                self._tokens.invalidate(tenant_id, token)
                stats.retries += 1
                continue
            if decision.action is Action.RETRY and self.policy.can_retry(attempt):
                delay = self.policy.delay(attempt, retry_after if last.status in THROTTLE_STATUSES else None)
                stats.retries += 1
                await self._sleep(delay)
                continue
            last.retryable = decision.action is Action.RETRY
            raise last

    @staticmethod
    def _decide(status: int, err: GraphErrorBody, spec: StreamSpec, parent_scoped: bool,
                token: AccessToken) -> Decision:
        return classify(status, err, spec, parent_scoped=parent_scoped, granted_roles=token.roles)

    async def pages(
        self,
        url: str,
        tenant_id: str,
        *,
        spec: StreamSpec,
        parent_scoped: bool,
        stats: RequestStats,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Page]:
        """Every page from `url` on, following `@odata.nextLink` verbatim (custom headers resent each time).

        The next page is fetched while the caller writes the current one (one request in flight per partition,
        as before, but the network wait overlaps the JSON and gzip work); at most two pages are held.
        """
        def fetch(link: str) -> asyncio.Task[dict[str, Any]]:
            return asyncio.ensure_future(self.get_json(link, tenant_id, spec=spec, parent_scoped=parent_scoped,
                                                       stats=stats, headers=headers))

        pending: asyncio.Task[dict[str, Any]] | None = fetch(url)
        try:
            while pending is not None:
                body = await pending
                pending = None
                value = body.get("value")
                if value is None and "id" in body:
                    value = [body]  # a single entity (GET /x/{id})
                records = [r for r in (value or []) if isinstance(r, dict)]
                next_link = body.get("@odata.nextLink")
                delta_link = body.get("@odata.deltaLink")
                stats.pages += 1
                if isinstance(next_link, str):
                    pending = fetch(next_link)
                yield Page(records, next_link if isinstance(next_link, str) else None,
                           delta_link if isinstance(delta_link, str) else None)
        finally:
            if pending is not None:  # the caller stopped early (error, or it had enough): do not leak the fetch
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
