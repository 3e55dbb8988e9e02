"""How fast the Graph emulator serves pages over HTTPS, and how much memory it needs.

    python -m bench.graph_serve_bench [--preset large] [--baseline demo] [--mailboxes 100]

The emulator runs in a child process (so its RSS is its own) on an ephemeral HTTPS port with throttling off.
For the `--preset` tenant and, as the baseline in the same command, the `--baseline` tenant, the client reads:

- every user with `$top=999` (gzip, as real clients ask for it),
- the largest mailbox among the first `--mailboxes` users with `$top=1000`,

and prints pages/s, records/s, MB/s (uncompressed JSON), the ratio preset/baseline (close to 1 means serving cost
does not grow with tenant size, because records are generated on demand) and the emulator's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import psutil  # noqa: E402

from devstack import ca  # noqa: E402
from devstack.tokens import GRAPH_RESOURCE, SigningKey, access_token_claims  # noqa: E402

ROLES = ["User.Read.All", "Mail.Read"]


# --- child: the emulator -------------------------------------------------------------------------------------------
async def serve(preset: str, workdir: Path) -> None:
    from devstack.graph import GraphSettings, ThrottleSettings, create_app
    from devstack.graph.serve import start_https
    from devstack.tenant import build_tenant
    from devstack.tenant.sizes import TenantSizes
    from devstack.tokens import KeySet, TokenVerifier

    certs = ca.load_or_create(workdir / "certs")
    key = SigningKey.load_or_create(workdir / "signing-key.pem")
    tenant = build_tenant(1, TenantSizes.preset(preset), None)
    app = create_app(tenant=tenant, verifier=TokenVerifier(KeySet([key]), tenants=[tenant.tenant_id]),
                     settings=GraphSettings(throttle=ThrottleSettings(enabled=False)))
    runner, port = await start_https(app, certs.server_ssl_context())
    print(json.dumps({"port": port, "tenant_id": tenant.tenant_id}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, sys.stdin.read)  # EOF when the parent exits: never orphaned
    finally:
        await runner.cleanup()


# --- parent: the client --------------------------------------------------------------------------------------------
@dataclass
class Walk:
    pages: int = 0
    records: int = 0
    raw_bytes: int = 0
    seconds: float = 0.0

    def row(self) -> dict[str, float]:
        s = self.seconds or 1e-9
        return {"pages": self.pages, "records": self.records, "pages_per_s": self.pages / s,
                "records_per_s": self.records / s, "mb_per_s": self.raw_bytes / s / 1e6, "seconds": self.seconds}


class Emulator:
    def __init__(self, preset: str, workdir: Path) -> None:
        self.preset = preset
        self.workdir = workdir
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.tenant_id = ""
        self.peak_rss = 0

    def __enter__(self) -> Emulator:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", self.preset, "--workdir", str(self.workdir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator child exited before reporting its port")
        info = json.loads(line)
        self.port, self.tenant_id = int(info["port"]), str(info["tenant_id"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss(self) -> int:
        assert self.proc is not None
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    async def sample_rss(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak_rss = max(self.peak_rss, self.rss())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)


async def walk(session: aiohttp.ClientSession, url: str, token: str) -> Walk:
    result = Walk()
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    started = time.perf_counter()
    next_url: str | None = url
    while next_url:
        async with session.get(next_url, headers=headers) as resp:
            raw = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{next_url}: {resp.status} {raw[:300]!r}")
        body = json.loads(raw)
        result.pages += 1
        result.records += len(body["value"])
        result.raw_bytes += len(raw)
        next_url = body.get("@odata.nextLink")
    result.seconds = time.perf_counter() - started
    return result


async def measure(emu: Emulator, workdir: Path, mailboxes: int) -> dict[str, Any]:
    key = SigningKey.load_or_create(workdir / "signing-key.pem")
    token = key.sign(access_token_claims(tenant_id=emu.tenant_id, client_id=str(uuid.uuid4()),
                                         object_id=str(uuid.uuid4()), audience=GRAPH_RESOURCE, roles=ROLES,
                                         lifetime_seconds=7200))
    ctx = ssl.create_default_context(cafile=str(workdir / "certs" / "ca.pem"))
    base = f"https://127.0.0.1:{emu.port}/v1.0"
    stop = asyncio.Event()
    sampler = asyncio.create_task(emu.sample_rss(stop))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx), trust_env=False) as session:
        users = await walk(session, f"{base}/users?$top=999", token)
        # Find the largest mailbox among the first users (counting is cheap: $top=1&$count=true).
        ids_page = await (await session.get(f"{base}/users?$top={mailboxes}&$select=id",
                                            headers={"Authorization": f"Bearer {token}"})).json()
        best, best_count = "", -1
        for user in ids_page["value"]:
            async with session.get(f"{base}/users/{user['id']}/messages?$top=1&$count=true&$select=id",
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
                if resp.status != 200:
                    continue
                count = int((await resp.json())["@odata.count"])
            if count > best_count:
                best, best_count = user["id"], count
        messages = await walk(session, f"{base}/users/{best}/messages?$top=1000", token)
    stop.set()
    await sampler
    return {"users": users.row(), "messages": messages.row(), "mailbox_size": best_count,
            "rss_mb": emu.rss() / 2**20, "peak_rss_mb": emu.peak_rss / 2**20}


def run_preset(preset: str, mailboxes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"graph-bench-{preset}-") as tmp:
        workdir = Path(tmp)
        ca.load_or_create(workdir / "certs")
        SigningKey.load_or_create(workdir / "signing-key.pem")
        with Emulator(preset, workdir) as emu:
            return asyncio.run(measure(emu, workdir, mailboxes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="large", help="tenant size preset to measure (default: large)")
    parser.add_argument("--baseline", default="demo", help="preset measured first as the baseline (default: demo)")
    parser.add_argument("--mailboxes", type=int, default=100, help="users scanned for the largest mailbox")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve, Path(args.workdir)))
        return 0
    results = {name: run_preset(name, args.mailboxes) for name in (args.baseline, args.preset)}
    base, big = results[args.baseline], results[args.preset]
    print(f"Graph emulator over HTTPS (pid-separated), {os.cpu_count()} CPUs, throttling off, gzip on")
    print(f"{'preset':8} {'stream':9} {'pages':>6} {'records':>8} {'pages/s':>8} {'records/s':>10} {'MB/s':>6}")
    for name, res in results.items():
        for stream in ("users", "messages"):
            r = res[stream]
            print(f"{name:8} {stream:9} {r['pages']:>6} {r['records']:>8} {r['pages_per_s']:>8.1f} "
                  f"{r['records_per_s']:>10.0f} {r['mb_per_s']:>6.1f}")
        print(f"{name:8} largest mailbox scanned: {res['mailbox_size']} messages; emulator RSS "
              f"{res['rss_mb']:.0f} MiB (peak {res['peak_rss_mb']:.0f} MiB)")
    for stream in ("users", "messages"):
        ratio = big[stream]["records_per_s"] / max(base[stream]["records_per_s"], 1e-9)
        print(f"ratio {args.preset}/{args.baseline} records/s for {stream}: {ratio:.2f}")
    print(json.dumps({"results": results}, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
