"""The shared ledger as one small Blob document per (app, tenant, scope) in the app's own storage account, which
every Function instance can reach. Read-modify-write guarded by ETag (`If-Match`; `If-None-Match: *` to create):
a 412 means another instance booked first, so re-read and book again. One booking costs one write (the last
read ETag is reused) plus a read only after losing a race.

When Blob is unreachable the instance keeps working on a conservative local share (half of an even split among
the instances last seen in the ledger, at least a quarter of the budget gone) instead of stopping the sync or
spending the whole budget alone; it tries Blob again after a few windows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from shared.config import Settings
from shared.graph.budget import Grant, Ledger, ScopeBudget, book, paused
from shared.graph.governor import Clock, Governor, GrantSource, LocalSource

log = logging.getLogger("shared.graph.budget")

LEDGER_FOLDER = "_governor"
_RACES = 16
_BLOB_RETRIES = 0  # a failing ledger must not hold requests back: the local share takes over at once
_Edit = Callable[[Ledger, float], tuple[Ledger, Grant | None, bool]]


@dataclass(slots=True)
class _Cached:
    ledger: Ledger
    etag: str | None


@dataclass(slots=True)
class BlobStats:
    reads: int = 0
    writes: int = 0
    conflicts: int = 0
    fallbacks: int = 0


class BlobGrantSource:
    def __init__(self, container: ContainerClient, *, clock: Clock = time.time, folder: str = LEDGER_FOLDER) -> None:
        self._container = container
        self._folder = folder
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._fallback = LocalSource(clock)
        self._fallback_until: dict[str, float] = {}
        self._holders: dict[str, int] = {}
        self._container_checked = False
        self.stats = BlobStats()

    def _path(self, key: str) -> str:
        return f"{self._folder}/{key}.json"

    async def _read(self, key: str) -> _Cached:
        self.stats.reads += 1
        blob = self._container.get_blob_client(self._path(key))
        try:
            downloader = await blob.download_blob(retry_total=_BLOB_RETRIES)
            data = await downloader.readall()
        except ResourceNotFoundError:
            return _Cached(Ledger(), None)
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            parsed = None
        return _Cached(Ledger.from_json(parsed), downloader.properties.etag)

    async def _write(self, key: str, ledger: Ledger, etag: str | None) -> str | None:
        """The new ETag, or None when another instance wrote first (412 / 409)."""
        self.stats.writes += 1
        blob = self._container.get_blob_client(self._path(key))
        body = orjson.dumps(ledger.to_json())
        try:
            if etag is None:
                result = await blob.upload_blob(body, overwrite=False, retry_total=_BLOB_RETRIES)
            else:
                result = await blob.upload_blob(body, overwrite=True, etag=etag, retry_total=_BLOB_RETRIES,
                                                match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError):
            self.stats.conflicts += 1
            return None
        except ResourceNotFoundError:
            if self._container_checked:
                raise
            self._container_checked = True  # a fresh lake: create the container once, then write again
            with contextlib.suppress(ResourceExistsError):
                await self._container.create_container()
            return await self._write(key, ledger, etag)
        return str(result.get("etag"))

    async def _update(self, key: str, edit: _Edit) -> Grant | None:
        """Apply `edit` (ledger, now -> new ledger, grant, write?) until a conditional write wins."""
        for _ in range(_RACES):
            cached = self._cache.get(key) or await self._read(key)
            ledger, grant, write = edit(cached.ledger, self._clock())
            if not write:
                self._cache.pop(key, None)  # perhaps stale: the next booking reads afresh
                return grant
            etag = await self._write(key, ledger, cached.etag)
            if etag is None:
                self._cache.pop(key, None)
                continue
            self._cache[key] = _Cached(ledger, etag)
            return grant
        raise _Contended(key)

    def _booking(self, key: str, holder: str, want: float, budget: ScopeBudget) -> _Edit:
        def edit(ledger: Ledger, now: float) -> tuple[Ledger, Grant | None, bool]:
            updated, grant = book(ledger, now=now, holder=holder, want=want, budget=budget)
            self._holders[key] = len(updated.holders(now, budget.window) | {holder})
            return updated, grant, grant is not None
        return edit

    async def book(self, key: str, holder: str, want: float, budget: ScopeBudget) -> Grant | None:
        now = self._clock()
        if self._fallback_until.get(key, 0.0) > now:
            return await self._local(key, holder, want, budget)
        try:
            return await self._update(key, self._booking(key, holder, want, budget))
        except (AzureError, _Contended) as exc:
            self.stats.fallbacks += 1
            self._fallback_until[key] = now + 3 * budget.window
            self._cache.pop(key, None)
            log.warning("budget ledger %s unavailable (%s): pacing on a local share for %.0f s", key,
                        type(exc).__name__, 3 * budget.window)
            return await self._local(key, holder, want, budget)

    async def _local(self, key: str, holder: str, want: float, budget: ScopeBudget) -> Grant | None:
        instances = max(2, 2 * self._holders.get(key, 1))
        share = ScopeBudget(budget.scope, max(1.0, budget.units / instances), budget.window)
        return await self._fallback.book(key, holder, min(want, share.units), share)

    async def pause(self, key: str, until: float) -> None:
        """Best effort: the fence in this process holds anyway; other instances learn it on their next booking."""
        await self._fallback.pause(key, until)
        if self._fallback_until.get(key, 0.0) > self._clock():
            return
        cached = self._cache.get(key)
        if cached is not None and cached.ledger.paused_until >= until:
            return
        try:
            await self._update(key, lambda ledger, _now: (paused(ledger, until), None, True))
        except (AzureError, _Contended) as exc:
            log.warning("budget ledger %s: pause not shared (%s)", key, type(exc).__name__)


class _Contended(Exception):
    """More instances raced for one ledger than `_RACES` rounds could settle."""


def make_governor(settings: Settings, blob_service: BlobServiceClient) -> Governor | None:
    """The governor GRAPH_GOVERNOR asks for; `shared` books from ledgers in the output container."""
    if settings.governor == "off":
        return None
    holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    source: GrantSource = LocalSource()
    if settings.governor == "shared":
        # under OUTPUT_PREFIX like every other blob of the app (checkpoints, manifests), never beside it
        source = BlobGrantSource(blob_service.get_container_client(settings.output_container),
                                 folder=f"{settings.output_prefix}/{LEDGER_FOLDER}")
    app_id = settings.client_id if settings.credential_type != "managed_identity" else settings.azure_client_id
    return Governor(source, holder=holder, tier=settings.tenant_size, share=settings.budget_share,
                    app_id=app_id or "")
