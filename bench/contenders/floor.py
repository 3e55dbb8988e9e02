"""The read-only floor: the fastest honest reader of the raced streams this machine allows, so the gap between
the product and the lower bound can be split into what the machine costs and what the product costs.

It reads exactly what the other contenders read (the same page size and `$select`s) and writes nothing: one
aiohttp session with a large pool, one client-credentials token, gzip. Every users page starts its users'
message chains as soon as it arrives; all mailboxes run at once up to `CHAINS`, each chain strictly sequential
(a nextLink is known only when its page arrives), so Outlook's 4 concurrent requests per mailbox hold.
`Retry-After` is honoured on 429/503 and counted; anything else that goes wrong fails the mailbox's chain, and
one failed chain makes the whole run an error: a floor that silently skipped work would be no floor.

    python -m bench.contenders.floor CONFIG.json [CHAINS]
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from yarl import URL

from bench.contenders.common import ContenderConfig, ContenderResult

CHAINS = 512  # mailboxes read at once; each is one request at a time
MAX_TRIES = 6  # per page, on 429/503 only
NO_MAILBOX = (403, 404)  # on a chain's first page: a guest, an unlicensed user, an application access policy
TIMEOUT = aiohttp.ClientTimeout(total=300)


class ChainFailed(Exception):
    """A page of a mailbox's chain could not be read; the run must not report success."""


@dataclass(slots=True)
class Tally:
    """What the run saw besides records: mailboxes without one, and chains that failed (first few kept)."""

    no_mailbox: int = 0
    chains: int = 0
    failures: list[str] = field(default_factory=list)
    failed: int = 0


class FloorReader:
    def __init__(self, config: ContenderConfig, result: ContenderResult, http: aiohttp.ClientSession,
                 chains: int = CHAINS) -> None:
        self.config = config
        self.result = result
        self.http = http
        self.gate = asyncio.Semaphore(chains)
        self.tally = Tally()
        self.headers: dict[str, str] = {}

    async def authenticate(self) -> None:
        """Once: a client-credentials token lasts an hour, far longer than any run of the race."""
        async with self.http.post(
            f"{self.config.authority_host}/{self.config.tenant_id}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": self.config.client_id,
                  "client_secret": self.config.client_secret, "scope": "https://graph.microsoft.com/.default"},
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"token request answered {resp.status}")
            body = orjson.loads(await resp.read())
        self.headers = {"Authorization": f"Bearer {body['access_token']}", "Accept-Encoding": "gzip"}

    async def page(self, url: str) -> tuple[int, dict[str, Any] | None]:
        """One page: (200, body), or (403/404, None) for the caller to judge; 429/503 wait Retry-After."""
        for _ in range(MAX_TRIES):
            self.result.requests += 1
            async with self.http.get(URL(url, encoded=True), headers=self.headers) as resp:
                if resp.status == 200:
                    body: dict[str, Any] = orjson.loads(await resp.read())
                    return 200, body
                if resp.status in (429, 503):
                    self.result.throttled += 1
                    await resp.read()
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1") or 1))
                    continue
                if resp.status in NO_MAILBOX:
                    await resp.read()
                    return resp.status, None
                raise ChainFailed(f"{resp.status} {(await resp.text())[:200]}")
        raise ChainFailed(f"still 429/503 after {MAX_TRIES} tries")

    async def messages_page(self, url: str) -> tuple[int, int | None, str | None]:
        """(status, records or None for no mailbox, nextLink): the page itself is dropped before the next request,
        so 512 chains waiting on the network hold no decoded pages (peak RSS is the reader's, not a backlog's)."""
        status, body = await self.page(url)
        if body is None:
            return status, None, None
        return status, len(body.get("value", [])), body.get("@odata.nextLink")

    async def mailbox(self, user_id: str, first_url: str) -> None:
        async with self.gate:
            self.tally.chains += 1
            url: str | None = first_url
            first = True
            try:
                while url:
                    status, records, url = await self.messages_page(url)
                    if records is None:
                        if not first:
                            raise ChainFailed(f"{status} in the middle of the chain")
                        self.tally.no_mailbox += 1
                        return
                    self.result.records += records
                    first = False
            except Exception as exc:  # any failure of one chain is counted; the others carry on
                self.tally.failed += 1
                if len(self.tally.failures) < 3:
                    self.tally.failures.append(f"user {user_id}: {type(exc).__name__}: {exc}"[:200])

    async def sync(self) -> None:
        root = f"{self.config.graph_url}/v1.0"
        top = self.config.page_size
        user_select = f"&$select={','.join(self.config.user_select)}" if self.config.user_select else ""
        mail_select = f"&$select={','.join(self.config.message_select)}" if self.config.message_select else ""
        await self.authenticate()
        chains: list[asyncio.Task[None]] = []
        url: str | None = f"{root}/users?$top={top}{user_select}"
        try:
            while url:
                status, body = await self.page(url)
                if body is None:
                    raise RuntimeError(f"listing users answered {status}")
                users = body.get("value", [])
                self.result.users += len(users)
                for user in users:
                    chain = self.mailbox(user["id"], f"{root}/users/{user['id']}/messages?$top={top}{mail_select}")
                    chains.append(asyncio.create_task(chain))
                url = body.get("@odata.nextLink")
        finally:
            await asyncio.gather(*chains)  # chains record their own failures; none raises
        self.verdict()

    def verdict(self) -> None:
        """Success only when every chain was read to its end and at least one mailbox could be read at all."""
        if self.tally.failed:
            raise RuntimeError(f"{self.tally.failed} of {self.tally.chains} mailbox chains failed, e.g. "
                               + "; ".join(self.tally.failures))
        if self.tally.chains and self.tally.no_mailbox == self.tally.chains:
            raise RuntimeError(f"no mailbox could be read: all {self.tally.chains} answered 403/404")


async def run(config: ContenderConfig, result: ContenderResult, chains: int) -> None:
    context = ssl.create_default_context(cafile=config.ca_bundle)
    connector = aiohttp.TCPConnector(ssl=context, limit=chains + 8, limit_per_host=chains + 8)
    async with aiohttp.ClientSession(connector=connector, trust_env=False, timeout=TIMEOUT) as http:
        await FloorReader(config, result, http, chains).sync()


def main() -> None:
    config = ContenderConfig.load(Path(sys.argv[1]))
    chains = int(sys.argv[2]) if len(sys.argv) > 2 else CHAINS
    result = ContenderResult("read-only floor")
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        asyncio.run(run(config, result, chains))
    except Exception as exc:  # reported in the race table, not a traceback
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    result.finish(started, cpu_started).emit()


if __name__ == "__main__":
    main()
