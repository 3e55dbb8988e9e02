"""Count the engine's Storage requests on the wire: a transport that records each request the Blob clients send
and hands it to the engine's real transport (so every call still reaches Azurite)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.pipeline.transport import AsyncHttpTransport

from shared import runtime
from shared.config import Settings


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str  # /<account>/<container>[/<blob>]
    comp: str  # the `comp` query parameter ("list" for a listing), "" for none
    prefix: str  # a listing's `prefix`


@dataclass(slots=True)
class StorageCalls:
    calls: list[Call] = field(default_factory=list)

    def clear(self) -> None:
        self.calls.clear()

    def checkpoint(self, method: str) -> list[Call]:
        """Requests of `method` on checkpoint blobs (`.../_state/<stream>/<partition>.json`)."""
        return [c for c in self.calls if c.method == method and "/_state/" in c.path and not c.comp]

    def listings(self) -> list[Call]:
        return [c for c in self.calls if c.comp == "list"]

    def census(self) -> list[str]:
        """Prefixes of the checkpoint listings sent before the first checkpoint write (the plan's census; the
        manifest's pruning lists the same folders at the end of a run)."""
        first_put = next((i for i, c in enumerate(self.calls) if c.method == "PUT" and "/_state/" in c.path),
                         len(self.calls))
        return [c.prefix for c in self.calls[:first_put] if c.comp == "list" and "/_state/" in c.prefix]


class CountingTransport(AsyncHttpTransport[Any, Any]):
    def __init__(self, inner: AsyncHttpTransport[Any, Any], calls: StorageCalls) -> None:
        self._inner = inner
        self._calls = calls

    async def send(self, request: Any, **kwargs: Any) -> Any:
        url = urlsplit(request.url)
        query = parse_qs(url.query)
        self._calls.calls.append(Call(request.method, url.path, query.get("comp", [""])[0],
                                      query.get("prefix", [""])[0]))
        return await self._inner.send(request, **kwargs)

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()

    async def __aenter__(self) -> CountingTransport:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self._inner.__aexit__(*args)


def count_storage(monkeypatch: pytest.MonkeyPatch) -> StorageCalls:
    """Engines built from now on send their Blob requests through a counter (the stack always has a CA bundle,
    so the engine's own transport is a pooled `AioHttpTransport`)."""
    calls = StorageCalls()
    real: Callable[[Settings], dict[str, Any]] = runtime._blob_transport

    def counted(settings: Settings) -> dict[str, Any]:
        kwargs = real(settings)
        assert "transport" in kwargs, "the stack's settings always carry a CA bundle"
        return {**kwargs, "transport": CountingTransport(kwargs["transport"], calls)}

    monkeypatch.setattr(runtime, "_blob_transport", counted)
    return calls
