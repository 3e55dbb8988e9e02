"""A tiny HTTPS proxy in front of Azurite that fails data-blob commits: the request that makes a JSON Lines blob
visible (`Put Block List`, or `Put Blob` when the writer sends a small partition in one request) answers 500 for
each blob's first `fail_commits` attempts; every other request passes through untouched. Nothing of a failed commit
becomes visible, so a writer that lost its commit must write again, never expose a half-written blob and never
double its rows."""

from __future__ import annotations

import ssl
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
_FAILURE = (b'<?xml version="1.0" encoding="utf-8"?><Error><Code>InternalError</Code>'
            b"<Message>The server encountered an internal error. Please retry the request.</Message></Error>")


_DATA_SUFFIXES = (".jsonl", ".jsonl.gz")


def _is_data_commit(request: web.Request) -> bool:
    if request.method != "PUT" or not request.path.endswith(_DATA_SUFFIXES):
        return False
    comp = request.query.get("comp")
    return comp == "blocklist" or (comp is None and request.headers.get("x-ms-blob-type") == "BlockBlob")


@dataclass(slots=True)
class CommitFaultProxy:
    server_ssl: ssl.SSLContext
    upstream: str  # Azurite's blob origin, e.g. https://127.0.0.1:10000
    ca_bundle: str
    fail_commits: int = 4
    failed: int = 0
    passed_commits: int = 0
    attempts: Counter[str] = field(default_factory=Counter)
    url: str = ""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        if _is_data_commit(request):
            self.attempts[request.path] += 1
            if self.attempts[request.path] <= self.fail_commits:
                await request.read()
                self.failed += 1
                return web.Response(status=500, body=_FAILURE, content_type="application/xml",
                                    headers={"x-ms-error-code": "InternalError"})
            self.passed_commits += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read()
        async with self._session.request(request.method, self.upstream + request.rel_url.raw_path_qs,
                                         headers=headers, data=body, allow_redirects=False) as resp:
            payload = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
            return web.Response(status=resp.status, body=payload, headers=out)

    async def __aenter__(self) -> CommitFaultProxy:
        context = ssl.create_default_context(cafile=self.ca_bundle)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context),
                                              auto_decompress=False)
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host = urlsplit(self.upstream).hostname or "127.0.0.1"
        site = web.TCPSite(self._runner, host, 0, ssl_context=self.server_ssl)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"https://{host}:{port}"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
