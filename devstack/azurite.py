"""Azurite (Blob/Queue/Table emulator) as one child `node` process: HTTPS with the stack's certificate, OAuth.

Run node directly, never through npx (npx forks npm -> sh -> node and killing it orphans the server). The child
gets PR_SET_PDEATHSIG so it dies with its parent even if the parent is SIGKILLed; `stop()` covers the orderly
path. Ports are chosen by the OS (port 0) and read back from Azurite's startup lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack.ca import CertFiles

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_JS = REPO_ROOT / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
ACCOUNT = "devstoreaccount1"
# Azurite's documented well-known development key (public; for tests and tooling only).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at https?://[^:]+:(\d+)")
_PR_SET_PDEATHSIG = 1


class AzuriteError(RuntimeError):
    pass


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class AzuritePorts:
    blob: int
    queue: int
    table: int

    def blob_url(self) -> str:
        return f"https://127.0.0.1:{self.blob}/{ACCOUNT}"

    def connection_string(self) -> str:
        base = "https://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{self.blob}/{ACCOUNT};QueueEndpoint={base}:{self.queue}/{ACCOUNT};"
            f"TableEndpoint={base}:{self.table}/{ACCOUNT};"
        )


class Azurite:
    """Start/stop/restart on the same `location`, so blobs survive a restart (fault tests rely on that)."""

    def __init__(
        self,
        location: Path,
        certs: CertFiles,
        *,
        node: str = "node",
        script: Path = AZURITE_JS,
        ports: AzuritePorts | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.location = location
        self._certs = certs
        self._node = node
        self._script = script
        self._wanted = ports
        self._timeout = startup_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self.ports: AzuritePorts | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        wanted = self._wanted or self.ports  # a restart reuses the ports clients already know
        blob, queue, table = (wanted.blob, wanted.queue, wanted.table) if wanted else (0, 0, 0)
        return [
            self._node, str(self._script),
            "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
            "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table),
            "--location", str(self.location),
            "--cert", str(self._certs.server_cert), "--key", str(self._certs.server_key),
            "--oauth", "basic",
            "--skipApiVersionCheck", "--loose", "--disableTelemetry",
        ]  # fmt: skip

    async def start(self) -> AzuritePorts:
        """Start on the previous/wanted ports when known; if one is taken meanwhile, fall back to new ports."""
        pinned = self._wanted or self.ports
        try:
            return await self._start_once()
        except AzuriteError as exc:
            if pinned is None or "EADDRINUSE" not in str(exc):
                raise
        print(f"devstack: Azurite ports {pinned} are taken; starting on new ports (old blob URLs will not resolve)",
              file=sys.stderr)
        self._wanted = self.ports = None
        return await self._start_once()

    async def _start_once(self) -> AzuritePorts:
        if self._proc is not None:
            raise AzuriteError("Azurite is already running; stop() it first")
        if not self._script.exists():
            raise AzuriteError(f"{self._script} not found: run `npm ci` (or `make install`) in {REPO_ROOT}")
        self.location.mkdir(parents=True, exist_ok=True)
        self._proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # PR_SET_PDEATHSIG must be set in the child before exec (Linux only; elsewhere stop() is the guard).
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            # Own process group: a Ctrl-C/killpg aimed at the stack must not reach Azurite directly. It handles
            # only the first SIGTERM (then flushes its metadata DB); a second one kills it mid-flush.
            start_new_session=True,
            cwd=str(self.location),
        )
        try:
            self.ports = await asyncio.wait_for(self._read_ports(), self._timeout)
        except BaseException:
            await self.stop()
            raise
        self._drain = asyncio.create_task(self._drain_output(self._proc))
        return self.ports

    async def _read_ports(self) -> AzuritePorts:
        assert self._proc is not None and self._proc.stdout is not None
        found: dict[str, int] = {}
        lines: list[str] = []
        while len(found) < 3:
            raw = await self._proc.stdout.readline()
            if not raw:
                raise AzuriteError("Azurite exited during startup:\n" + "\n".join(lines[-20:]))
            line = raw.decode("utf-8", "replace").rstrip()
            lines.append(line)
            match = _LISTENING.search(line)
            if match:
                found[match.group(1)] = int(match.group(2))
        return AzuritePorts(found["Blob"], found["Queue"], found["Table"])

    @staticmethod
    async def _drain_output(proc: asyncio.subprocess.Process) -> None:
        """Keep reading the access log so a full pipe never blocks Azurite."""
        assert proc.stdout is not None
        while await proc.stdout.readline():
            pass

    async def stop(self, grace_seconds: float = 10.0) -> None:
        proc, drain = self._proc, self._drain
        if proc is None:
            return
        try:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), grace_seconds)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        finally:
            self.kill_now()
            self._proc, self._drain = None, None
            if drain is not None:
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain

    async def kill(self) -> None:
        """A crash, not a shutdown: SIGKILL, so unsaved metadata (up to its 5 s autosave) is lost as in a crash."""
        proc = self._proc
        if proc is not None:
            self.kill_now()
            await proc.wait()
        await self.stop()

    async def restart(self) -> AzuritePorts:
        await self.stop()
        return await self.start()

    def kill_now(self) -> None:
        """Synchronous last resort for atexit/signal paths where no event loop can run."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGKILL)
