"""A serial pager the way the Stitch/Qlik Graph tap works: one request at a time, parent by parent.

Users first (`$top` = page size, following `@odata.nextLink`), then for each user its messages, inline. A 429
sleeps Retry-After and then backs off exponentially (factor 2, six tries), as the tap's `backoff.expo` handler
does; 5xx and connection errors back off the same way. Records go out as JSON lines (the tap writes Singer
RECORD messages to stdout). Honest and idiomatic: a `requests.Session` with keep-alive, no artificial delays.

    python -m bench.contenders.serial CONFIG.json
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from bench.contenders.common import ContenderConfig, ContenderResult

MAX_TRIES = 6


class SerialPager:
    def __init__(self, config: ContenderConfig, result: ContenderResult) -> None:
        self.config = config
        self.result = result
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = config.ca_bundle
        self.token: str | None = None
        self.token_expires = 0.0

    def authenticate(self) -> None:
        resp = self.http.post(
            f"{self.config.authority_host}/{self.config.tenant_id}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": self.config.client_id,
                  "client_secret": self.config.client_secret, "scope": "https://graph.microsoft.com/.default"},
            timeout=60,
        )
        resp.raise_for_status()
        body = resp.json()
        self.token = body["access_token"]
        self.token_expires = time.monotonic() + float(body.get("expires_in", 3600)) - 300

    def get(self, url: str) -> dict[str, Any]:
        for attempt in range(1, MAX_TRIES + 1):
            if self.token is None or time.monotonic() > self.token_expires:
                self.authenticate()
            self.result.requests += 1
            try:
                resp = self.http.get(url, headers={"Authorization": f"Bearer {self.token}"}, timeout=300)
            except requests.ConnectionError:
                if attempt == MAX_TRIES:
                    raise
                time.sleep(2 ** attempt)
                continue
            if resp.status_code == 200:
                data: dict[str, Any] = resp.json()
                return data
            if resp.status_code == 429:
                self.result.throttled += 1
                time.sleep(float(resp.headers.get("Retry-After", "0") or 0))
            if (resp.status_code == 429 or resp.status_code >= 500) and attempt < MAX_TRIES:
                time.sleep(2 ** (attempt - 1))
                continue
            resp.raise_for_status()
        raise RuntimeError(f"gave up after {MAX_TRIES} tries: {url}")

    def paginate(self, url: str) -> Iterator[dict[str, Any]]:
        next_url: str | None = url
        while next_url:
            page = self.get(next_url)
            yield from page.get("value", [])
            next_url = page.get("@odata.nextLink")

    def sync(self) -> None:
        root = f"{self.config.graph_url}/v1.0"
        out = Path(self.config.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        top = self.config.page_size
        user_select = f"&$select={','.join(self.config.user_select)}" if self.config.user_select else ""
        mail_select = f"&$select={','.join(self.config.message_select)}" if self.config.message_select else ""
        with (out / "users.jsonl").open("w", encoding="utf-8") as users_out, \
                (out / "mail_messages.jsonl").open("w", encoding="utf-8") as mail_out:
            users = []
            for user in self.paginate(f"{root}/users?$top={top}{user_select}"):
                users_out.write(json.dumps(user) + "\n")
                users.append(user["id"])
                self.result.users += 1
            for user_id in users:
                try:
                    for message in self.paginate(f"{root}/users/{user_id}/messages?$top={top}{mail_select}"):
                        message["user_id"] = user_id
                        mail_out.write(json.dumps(message) + "\n")
                        self.result.records += 1
                except requests.HTTPError as exc:
                    # No mailbox (guests, unlicensed users): the tap logs and moves on to the next parent.
                    if exc.response is None or exc.response.status_code not in (403, 404):
                        raise


def main() -> None:
    config = ContenderConfig.load(Path(sys.argv[1]))
    result = ContenderResult("serial pager")
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        SerialPager(config, result).sync()
    except Exception as exc:  # reported in the race table, not a traceback
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    result.finish(started, cpu_started).emit()


if __name__ == "__main__":
    main()
