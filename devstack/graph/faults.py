"""Deterministic fault decisions: a pure function of the seed, the request and how often that URL was seen.

Keying on the URL's occurrence number (not on global arrival order) keeps a rerun's faults identical even when
concurrent requests interleave differently, and lets a client's retry of the same URL get a fresh draw.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from devstack.graph.settings import FaultSettings


@dataclass(frozen=True, slots=True)
class FaultDecision:
    delay_seconds: float = 0.0
    status: int | None = None  # 503 or 504
    retry_after: int | None = None  # seconds, only with 503
    drop: bool = False  # close the connection before answering
    truncate: bool = False  # announce the full Content-Length, send half, close
    empty_page: bool = False  # serve a list page with no items but a nextLink to the same position
    malformed: bool = False  # a complete HTTP answer whose JSON body is cut in half (a broken proxy or backend)
    pad_to: int = 0  # a list page with records is padded to about this many bytes (a hostile, huge page)
    pad_gzip: bool = True  # the padded page is gzip-compressed (when accepted) and chunked; else Content-Length

    @property
    def any(self) -> bool:
        return bool(self.delay_seconds or self.status or self.drop or self.truncate or self.empty_page
                    or self.malformed or self.pad_to)


NO_FAULT = FaultDecision()


def applies(settings: FaultSettings, path: str) -> bool:
    return settings.active() and path.lower().startswith(settings.path_prefix.lower())


def decide(settings: FaultSettings, method: str, url: str, occurrence: int) -> FaultDecision:
    """`url` is the request target below /v1.0 (path and query); `occurrence` counts from 0 per URL."""
    digest = hashlib.sha256(f"{settings.seed}|{method}|{url}|{occurrence}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    # Always draw every variable in the same order so one knob never shifts another's outcomes.
    tail, error, error_kind, retry, drop, truncate, empty = (rng.random() for _ in range(7))
    delay = settings.latency_ms / 1000.0
    if tail < settings.tail_rate:
        delay += settings.tail_ms / 1000.0 * (1.0 + rng.random())
    if drop < settings.drop_rate:
        return FaultDecision(delay, drop=True)
    if error < settings.error_rate:
        status = 503 if error_kind < 0.5 else 504
        retry_after = 1 + int(retry * 3) if status == 503 and retry < settings.retry_after_rate else None
        return FaultDecision(delay, status=status, retry_after=retry_after)
    if truncate < settings.truncate_rate:
        return FaultDecision(delay, truncate=True)
    malformed = rng.random()  # drawn last, so adding it left every earlier knob's outcomes unchanged
    return FaultDecision(delay, empty_page=empty < settings.empty_page_rate,
                         malformed=malformed < settings.malformed_rate, pad_to=settings.huge_page_bytes,
                         pad_gzip=settings.huge_page_gzip)


# --- the huge page ------------------------------------------------------------------------------------------------
PADDING_PROPERTY = "padding"
_PAD_CHUNK = b" " * 65536  # blank: no credential holds a space, so the leak scans skip through it quickly


def paddable(body: dict[str, Any] | None) -> bool:
    """Only a list page that holds records can be made huge (an empty page has nothing to pad)."""
    value = body.get("value") if body is not None else None
    return isinstance(value, list) and any(isinstance(r, dict) for r in value)


def _padded_parts(body: dict[str, Any], pad_to: int) -> tuple[int, Iterator[bytes]]:
    """(exact length, the page's bytes in pieces): every record gets a `padding` string, their shares summing to
    what the page lacks to reach `pad_to`; the pieces are generated lazily so the page is never held whole."""
    head = {k: v for k, v in body.items() if k != "value"}
    head_bytes = orjson.dumps(head)
    prefix = head_bytes[:-1] + (b"," if head else b"") + b'"value":['
    suffix = b"]}"
    records = [orjson.dumps(r) for r in body["value"] if isinstance(r, dict)]
    openers = [r[:-1] + (b"," if len(r) > 2 else b"") + f'"{PADDING_PROPERTY}":"'.encode() for r in records]
    fixed = len(prefix) + len(suffix) + (len(records) - 1) + sum(len(o) + 2 for o in openers)  # 2: closing `"}`
    room = max(0, pad_to - fixed)
    share, extra = divmod(room, len(records))
    pads = [share + (1 if i < extra else 0) for i in range(len(records))]

    def pieces() -> Iterator[bytes]:
        yield prefix
        for i, (opener, pad) in enumerate(zip(openers, pads, strict=True)):
            yield (b"," if i else b"") + opener
            while pad > 0:
                piece = _PAD_CHUNK[:pad]
                pad -= len(piece)
                yield piece
            yield b'"}'
        yield suffix

    return fixed + room, pieces()


async def send_padded(request: web.Request, status: int, headers: dict[str, str], body: dict[str, Any],
                      pad_to: int, *, gzip: bool) -> web.StreamResponse:
    """Serve `body` padded to about `pad_to` bytes, streamed piece by piece so even a page far beyond any sane
    client limit costs the emulator one piece of memory. gzip (when the client accepts it) makes it chunked with
    no length, so a client can only find out by counting; without gzip the exact Content-Length is announced."""
    length, pieces = _padded_parts(body, pad_to)
    compress = gzip and "gzip" in request.headers.get("Accept-Encoding", "").lower()
    stream = web.StreamResponse(status=status, headers={k: v for k, v in headers.items()
                                                        if k.lower() not in ("content-length", "content-encoding")})
    packer = zlib.compressobj(1, zlib.DEFLATED, 31) if compress else None  # 31: gzip framing
    if packer is not None:
        stream.headers["Content-Encoding"] = "gzip"
        stream.enable_chunked_encoding()
    else:
        stream.content_length = length
    await stream.prepare(request)
    for piece in pieces:
        data = packer.compress(piece) if packer is not None else piece
        if data:
            await stream.write(data)
    if packer is not None:
        await stream.write(packer.flush())
    await stream.write_eof()
    return stream
