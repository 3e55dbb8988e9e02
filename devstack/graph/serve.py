"""Serve the emulator in-process over HTTPS on an ephemeral loopback port (benchmarks and tests; the stack
runner has its own server wiring)."""

from __future__ import annotations

import ssl

from aiohttp import web


async def start_https(
    app: web.Application, ssl_context: ssl.SSLContext, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Start `app`; returns the runner (call `cleanup()` to stop) and the bound port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=256)
    await site.start()
    return runner, int(runner.addresses[0][1])
