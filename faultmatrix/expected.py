"""What the Graph emulator holds, read independently of the engine: plain `requests`, a raw client-credentials
token of an app of its own, Graph's default page sizes and no `$select`, so a bug in the engine's paging cannot
hide itself by being repeated here. Read before a fault is switched on (the reader is a Graph client too)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import requests

from faultmatrix.check import PartitionKey
from shared.streams import CATALOG

READER_ROLES = (
    "User.Read.All", "Group.Read.All", "GroupMember.Read.All", "Application.Read.All", "Team.ReadBasic.All",
    "Channel.ReadBasic.All", "TeamMember.Read.All", "Chat.Read.All", "Mail.Read", "Calendars.Read",
    "Contacts.Read", "Files.Read.All", "AuditLog.Read.All", "Directory.Read.All", "Policy.Read.All",
    "RoleManagement.Read.Directory",
)
_ROOTS = {"users": "/users", "groups": "/groups", "teams": "/teams", "directory_roles": "/directoryRoles"}


class Absent(Exception):
    """The parent answers 403/404: no mailbox, no OneDrive, outside an access policy."""


class GraphReader:
    def __init__(self, graph_url: str, http: requests.Session, token: str) -> None:
        self.root = graph_url.rstrip("/") + "/v1.0"
        self.http = http
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.requests = 0

    def _get(self, url: str) -> dict[str, Any]:
        for _attempt in range(60):
            self.requests += 1
            resp = self.http.get(url, timeout=120)
            if resp.status_code in (429, 503, 504):
                time.sleep(min(float(resp.headers.get("Retry-After") or 0.2), 2.0))
                continue
            if resp.status_code in (403, 404):
                raise Absent(url)
            resp.raise_for_status()
            body: dict[str, Any] = resp.json()
            return body
        raise RuntimeError(f"the reader was throttled 60 times on {url}")

    def items(self, path: str) -> Iterator[dict[str, Any]]:
        url: str | None = self.root + path
        while url:
            body = self._get(url)
            yield from body.get("value", [])
            link = body.get("@odata.nextLink")
            url = link if isinstance(link, str) else None

    def ids(self, path: str) -> frozenset[str]:
        return frozenset(str(r["id"]) for r in self.items(path))

    def maybe_ids(self, path: str) -> frozenset[str] | None:
        try:
            return self.ids(path)
        except Absent:
            return None

    def expected(self, streams: list[str]) -> dict[PartitionKey, frozenset[str] | None]:
        """Record ids per (stream, parent) partition the engine plans for `streams`."""
        q = _q
        parents: dict[str, list[str]] = {}

        def parent_ids(name: str) -> list[str]:
            if name not in parents:
                if name == "chats":
                    chats: set[str] = set()
                    for user in parent_ids("users"):
                        chats |= self.maybe_ids(f"/users/{q(user)}/chats") or frozenset()
                    parents[name] = sorted(chats)
                elif name == "drives":
                    drives: set[str] = set()
                    for user in parent_ids("users"):
                        drives |= self.maybe_ids(f"/users/{q(user)}/drives") or frozenset()
                    parents[name] = sorted(drives)
                else:
                    parents[name] = sorted(self.ids(_ROOTS[name]))
            return parents[name]

        out: dict[PartitionKey, frozenset[str] | None] = {}
        for stream in streams:
            spec = CATALOG[stream]
            if spec.parent is None:
                out[(stream, None)] = self.ids(spec.path)
            elif not spec.fan_out:  # chats: one partition, each chat once
                out[(stream, None)] = frozenset(parent_ids("chats")) if stream == "chats" else frozenset()
            elif stream == "contacts":
                for parent in parent_ids(spec.parent):
                    out[(stream, parent)] = self.every_contact(parent)
            else:
                for parent in parent_ids(spec.parent):
                    out[(stream, parent)] = self.maybe_ids(spec.path.replace("{parent}", q(parent)))
        return out

    def every_contact(self, user: str) -> frozenset[str] | None:
        """The contacts stream copies the whole address book. Graph's `/users/{id}/contacts` is the default
        Contacts folder only and `/contactFolders` lists the folders inside it (not the default folder itself), so
        the union of both is every contact, each id once."""
        default = self.maybe_ids(f"/users/{_q(user)}/contacts")
        folders = self.maybe_ids(f"/users/{_q(user)}/contactFolders")
        if default is None and folders is None:
            return None
        found = set(default or ())
        for folder in sorted(folders or ()):
            found |= self.maybe_ids(f"/users/{_q(user)}/contactFolders/{_q(folder)}/contacts") or frozenset()
        return frozenset(found)


def _q(value: str) -> str:
    return quote(value, safe="")
