"""Which Microsoft Graph application permissions a set of streams needs, derived from the stream catalog.

The catalog lists each stream's permissions least-privileged first (any one is enough). Only application
permissions (app roles) can be granted to a daemon, so the first listed name that is an app role wins. A child
stream also needs its ancestors' permission: the orchestrator must list the parents (users, groups, teams...) before
it can fan out over them, even when the parent stream itself is not enabled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.streams import CATALOG, StreamSpec

GRAPH_RESOURCE_APP_ID = "00000003-0000-0000-c000-000000000000"
"""appId of Microsoft Graph's service principal, the same in every tenant and national cloud."""

# Fixed ids of Microsoft Graph's application permissions (appRoles of the Graph service principal). Source: the
# Microsoft Graph permissions reference (learn.microsoft.com/graph/permissions-reference, "Application" column),
# cross-checked against a dump of the Graph service principal's appRoles. Delegated-only names (for example
# Group.ReadBasic.All, Calendars.ReadBasic) have no entry on purpose: they cannot be granted to a daemon.
# `register_graph_app.py --verify-role-ids` re-checks these against the signed-in tenant.
APP_ROLE_IDS: Mapping[str, str] = {
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "Calendars.Read": "798ee544-9d2d-430c-a058-570e29e34338",
    "Calendars.ReadBasic.All": "8ba4a692-bc31-4128-9094-475872af8a53",
    "Channel.ReadBasic.All": "59a6b24b-4225-4393-8165-ebaec5f55d7a",
    "ChannelMessage.Read.All": "7b2449af-6ccd-4f4d-9f78-e550c193f0d1",
    "Chat.Read.All": "6b7d71aa-70aa-4810-a8d9-5d9fb2830017",
    "Chat.ReadBasic.All": "b2e060da-3baf-4687-9611-f4ebc0f0cbde",
    "ChatMember.Read.All": "a3410be2-8e48-4f32-8454-c29a7465209d",
    "ChatMessage.Read.All": "b9bb2381-47a4-46cd-aafb-00cb12f68504",
    "Contacts.Read": "089fe4d0-434a-44c5-8827-41ba8a0b17f5",
    "Device.Read.All": "7438b122-aefc-4978-80ed-43db9fcc7715",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "Files.Read.All": "01d4889c-1287-42c6-ac1f-5d1e02578ef6",
    "Group.Read.All": "5b567255-7703-4780-807c-7be8301ae99b",
    "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    "Mail.Read": "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
    "Mail.ReadBasic": "6be147d2-ea4f-4b5a-a3fa-3eab6f3c140a",
    "Mail.ReadBasic.All": "693c5e45-0940-467d-9b8a-1022fb9d42ef",
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "Reports.Read.All": "230c1aed-a721-4c5d-9cb4-a90514e508ef",
    "RoleManagement.Read.Directory": "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
    "Sites.Read.All": "332a536c-c7ef-4017-ab91-336970924f0d",
    "Team.ReadBasic.All": "2280dda6-0bfd-44ee-a2f4-cb867cfc4c1e",
    "TeamMember.Read.All": "660b7406-55f1-41ca-a0ed-0b035e182f3e",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadBasic.All": "97235f07-e226-4f63-ace3-39588e11d3a1",
}


class SelectionError(ValueError):
    """A stream selection that cannot be turned into a grantable permission set."""


@dataclass(frozen=True)
class Grant:
    """One application permission to request, and the streams that need it (directly or as a parent)."""

    permission: str
    app_role_id: str
    streams: tuple[str, ...]


def parse_stream_selection(selection: str | Iterable[str], catalog: Mapping[str, StreamSpec] = CATALOG) -> list[str]:
    """`all` or a comma-separated list (the SYNC_STREAMS format) -> validated stream names in catalog order."""
    names = [s.strip() for s in selection.split(",")] if isinstance(selection, str) else [s.strip() for s in selection]
    names = [n for n in names if n]
    if not names:
        raise SelectionError("SYNC_STREAMS is empty: give 'all' or a comma-separated list of stream names")
    if any(n.lower() == "all" for n in names):
        return list(catalog)
    unknown = [n for n in names if n not in catalog]
    if unknown:
        raise SelectionError(
            f"SYNC_STREAMS names unknown stream(s) {', '.join(unknown)}; valid: {', '.join(catalog)} or all"
        )
    return [name for name in catalog if name in names]


def application_permission(spec: StreamSpec) -> str:
    """The least-privileged of `spec.permissions` that exists as a Graph application permission."""
    for permission in spec.permissions:
        if permission in APP_ROLE_IDS:
            return permission
    raise SelectionError(
        f"stream {spec.name!r} lists no Graph application permission ({', '.join(spec.permissions)}); "
        "add the application permission to its catalog entry or to APP_ROLE_IDS"
    )


def with_ancestors(streams: Iterable[str], catalog: Mapping[str, StreamSpec] = CATALOG) -> dict[str, tuple[str, ...]]:
    """Each stream that must be readable -> the enabled streams that need it (itself, or a descendant)."""
    needed: dict[str, list[str]] = {}
    for name in streams:
        spec = catalog[name]
        chain = [name]
        while spec.parent is not None:
            spec = catalog[spec.parent]
            chain.append(spec.name)
        for member in chain:
            users = needed.setdefault(member, [])
            if name not in users:
                users.append(name)
    return {name: tuple(users) for name, users in needed.items()}


def application_alternatives(spec: StreamSpec) -> list[str]:
    """All of `spec.permissions` that are Graph application permissions, least-privileged first."""
    return [p for p in spec.permissions if p in APP_ROLE_IDS]


def choose_permissions(readable: Iterable[str], catalog: Mapping[str, StreamSpec] = CATALOG) -> dict[str, str]:
    """Stream -> the application permission that covers it, with as few distinct permissions as possible.

    Starts from each stream's least-privileged application permission, then drops any permission whose streams are
    all covered by another permission already in the set (chats can use the Chat.Read.All that chat_messages needs,
    so Chat.ReadBasic.All is not requested as well). Only chosen permissions are ever used, so nothing broader than
    some stream's own first choice is requested.
    """
    names = list(readable)
    alternatives = {name: application_alternatives(catalog[name]) for name in names}
    first = {name: application_permission(catalog[name]) for name in names}
    chosen = set(first.values())
    # Try to drop the permissions that fewest streams picked first; a drop must leave every stream covered.
    for candidate in sorted(chosen, key=lambda p: (sum(1 for f in first.values() if f == p), p)):
        remaining = chosen - {candidate}
        if all(any(p in remaining for p in alternatives[name]) for name in names):
            chosen = remaining
    return {name: next(p for p in alternatives[name] if p in chosen) for name in names}


def required_grants(streams: Iterable[str], catalog: Mapping[str, StreamSpec] = CATALOG) -> list[Grant]:
    """Exactly the application permissions the given streams need, sorted by permission name."""
    needed_by = with_ancestors(streams, catalog)
    picks = choose_permissions(needed_by, catalog)
    by_permission: dict[str, set[str]] = {}
    for readable, permission in picks.items():
        by_permission.setdefault(permission, set()).update(needed_by[readable])
    return [
        Grant(permission, APP_ROLE_IDS[permission], tuple(sorted(users)))
        for permission, users in sorted(by_permission.items())
    ]
