"""An independent reader of the Graph emulator: plain `requests`, a raw client-credentials token, Graph's
default page sizes and no `$select`, so its paging path differs from the engine's. What it reads is what the
emulator holds; the engine's blobs must match it id for id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import requests

from tests.conftest import RunningStack, ca_session

ORACLE_ROLES = [
    "User.Read.All", "Group.Read.All", "GroupMember.Read.All", "Application.Read.All", "Team.ReadBasic.All",
    "Channel.ReadBasic.All", "TeamMember.Read.All", "Chat.Read.All", "Mail.Read", "Calendars.Read",
    "Contacts.Read", "Files.Read.All", "AuditLog.Read.All", "Directory.Read.All", "Policy.Read.All",
    "RoleManagement.Read.Directory",
]


class Oracle:
    def __init__(self, stack: RunningStack) -> None:
        assert stack.env.graph_url, "the Graph emulator is not running"
        self.root = stack.env.graph_url.rstrip("/") + "/v1.0"
        app = stack.admin.register_app(roles=ORACLE_ROLES, secret=True, display_name="oracle")
        self.http: requests.Session = ca_session(stack.env.ca_bundle)
        token = self.http.post(
            f"{stack.env.authority_host}/{stack.env.tenant_id}/oauth2/v2.0/token",
            data={"client_id": app["client_id"], "client_secret": app["secret"]["value"],
                  "grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"},
            timeout=30,
        ).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def items(self, path: str) -> Iterator[dict[str, Any]]:
        """Every record under `path`; a 404/403 (no mailbox, no OneDrive) reads as empty."""
        url: str | None = self.root + path
        while url:
            resp = self.http.get(url, timeout=60)
            if resp.status_code in (403, 404):
                return
            resp.raise_for_status()
            body = resp.json()
            yield from body.get("value", [])
            url = body.get("@odata.nextLink")

    def ids(self, path: str) -> list[str]:
        return [r["id"] for r in self.items(path)]

    def status(self, path: str) -> int:
        return self.http.get(self.root + path, timeout=60).status_code

    @staticmethod
    def _q(value: str) -> str:
        return quote(value, safe="")

    def expected(self) -> dict[str, set[tuple[str | None, str]]]:
        """(parent id, record id) per stream for the 22 streams, parents walked like Graph documents."""
        users = self.ids("/users")
        groups = self.ids("/groups")
        teams = self.ids("/teams")
        roles = self.ids("/directoryRoles")
        q = self._q
        out: dict[str, set[tuple[str | None, str]]] = {}
        for stream, path in [("users", "/users"), ("applications", "/applications"),
                             ("service_principals", "/servicePrincipals"), ("groups", "/groups"),
                             ("teams", "/teams"), ("audit_logs_directory", "/auditLogs/directoryAudits"),
                             ("audit_logs_signins", "/auditLogs/signIns"),
                             ("conditional_access_policies", "/identity/conditionalAccess/policies"),
                             ("directory_roles", "/directoryRoles"),
                             ("directory_role_templates", "/directoryRoleTemplates")]:
            out[stream] = {(None, i) for i in self.ids(path)}
        out["group_member"] = {(g, i) for g in groups for i in self.ids(f"/groups/{q(g)}/members")}
        out["group_owner"] = {(g, i) for g in groups for i in self.ids(f"/groups/{q(g)}/owners")}
        out["channels"] = {(t, i) for t in teams for i in self.ids(f"/teams/{q(t)}/channels")}
        out["team_member"] = {(t, i) for t in teams for i in self.ids(f"/teams/{q(t)}/members")}
        out["directory_role_member"] = {(r, i) for r in roles for i in self.ids(f"/directoryRoles/{q(r)}/members")}
        chats = {c for u in users for c in self.ids(f"/users/{q(u)}/chats")}
        out["chats"] = {(None, c) for c in chats}
        out["chat_messages"] = {(c, i) for c in chats for i in self.ids(f"/chats/{q(c)}/messages")}
        out["mail_messages"] = {(u, i) for u in users for i in self.ids(f"/users/{q(u)}/messages")}
        out["calendar_events"] = {(u, i) for u in users for i in self.ids(f"/users/{q(u)}/events")}
        # Every contact of the mailbox: the default folder and each contact folder (the product reads folders).
        out["contacts"] = {(u, i) for u in users for i in self.ids(f"/users/{q(u)}/contacts")} | {
            (u, i) for u in users for f in self.ids(f"/users/{q(u)}/contactFolders")
            for i in self.ids(f"/users/{q(u)}/contactFolders/{q(f)}/contacts")}
        drives: set[tuple[str | None, str]] = {(u, d) for u in users for d in self.ids(f"/users/{q(u)}/drives")}
        out["drives"] = drives
        out["drive_items"] = {(d, i) for _, d in drives for i in self.ids(f"/drives/{q(d)}/root/delta")}
        return out
