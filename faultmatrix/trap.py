"""An HTTPS listener on another origin that records every request: where a poisoned nextLink points. If the
engine ever followed such a link, the trap would see the request (and whether it carried a bearer token)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web


@dataclass(slots=True)
class Trap:
    server_ssl: ssl.SSLContext
    hits: list[tuple[str, bool]] = field(default_factory=list)  # (path, had Authorization)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _any(self, request: web.Request) -> web.Response:
        self.hits.append((request.path, "Authorization" in request.headers))
        return web.json_response({"value": [{"id": "trap"}]})

    async def __aenter__(self) -> Trap:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "localhost", 0, ssl_context=self.server_ssl)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"https://localhost:{port}"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
