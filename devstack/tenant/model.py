"""The contract between the demo tenant (data, generated on demand) and the Graph emulator (HTTP semantics).

The tenant knows entities, their order, their mutations and a change log; it knows nothing about HTTP,
paging tokens, `$select`, throttling or permissions. The Graph emulator knows nothing about how records are made.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Record = dict[str, Any]

# Collection kinds and the parent ids that address them (the Graph emulator maps URLs onto these):
#   users, groups, applications, servicePrincipals, directoryAudits, signIns, conditionalAccessPolicies,
#   directoryRoles, directoryRoleTemplates                        -> no parent
#   groupMembers, groupOwners, groupDrives                         -> (group_id,)
#   channels, teamMembers                                          -> (team_id,)   (team id == group id)
#   chats (per user), mailFolders, messages (all folders), events, contactFolders, contacts (default folder),
#   drives (user's drives)                                         -> (user_id,)
#   folderMessages                                                 -> (user_id, mail_folder_id)
#   folderContacts                                                 -> (user_id, contact_folder_id)
#   chatMessages                                                   -> (chat_id,)
#   chatMembers                                                    -> (chat_id,)
#   driveItems                                                     -> (drive_id,)
#   directoryRoleMembers                                           -> (role_id,)
CollectionKind = Literal[
    "users", "groups", "applications", "servicePrincipals", "directoryAudits", "signIns",
    "conditionalAccessPolicies", "directoryRoles", "directoryRoleTemplates",
    "groupMembers", "groupOwners", "groupDrives", "channels", "teamMembers",
    "chats", "mailFolders", "messages", "events", "contactFolders", "contacts", "drives",
    "folderMessages", "folderContacts", "chatMessages", "chatMembers", "driveItems", "directoryRoleMembers",
]

ChangeKind = Literal["upsert", "soft_deleted", "deleted", "members"]


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a collection's change log; `seq` grows strictly across the whole tenant.

    - upsert: created or updated; `record` is the full current record.
    - soft_deleted: Graph `@removed: {"reason": "changed"}` (directory objects moved to deleted items).
    - deleted: Graph `@removed: {"reason": "deleted"}`; drive items are reported with the `deleted` facet instead.
    - members: group membership changed; `added` / `removed` hold directory object refs
      (`{"@odata.type": "#microsoft.graph.user", "id": ...}`), served as `members@delta`.
    """

    seq: int
    kind: ChangeKind
    id: str
    record: Record | None = None
    added: tuple[Record, ...] = field(default_factory=tuple)
    removed: tuple[Record, ...] = field(default_factory=tuple)


class Collection(Protocol):
    """An ordered, possibly huge, collection whose records are generated on demand.

    Order is stable between calls (mutations append creations at the end and drop deletions), so an offset is a
    valid paging cursor within one snapshot.
    """

    kind: CollectionKind

    def count(self) -> int: ...

    def page(self, offset: int, limit: int) -> list[Record]:
        """Full records (every property, Graph camelCase names) at [offset, offset + limit)."""
        ...

    def iter_from(self, offset: int = 0) -> Iterator[Record]:
        """Records from `offset` to the end, generated lazily (filters scan with this)."""
        ...

    def get(self, item_id: str) -> Record | None: ...

    def changes_since(self, seq: int) -> list[Change]:
        """Changes with `seq` greater than the argument, oldest first (may repeat an id)."""
        ...


# Optional capability of the demo tenant's collections (not part of the Protocol, so other implementations stay
# valid): `sorted_by` names the timestamp the generated records ascend in (messages: receivedDateTime, logs,
# chat messages), `lower_bound(moment)` finds the first offset at or after a time in O(log n), and
# `ordered_count()` says where the (unordered) created records begin. The demo tenant also offers
# `calendar_view(user_id, start, end)`: events in a window with series masters expanded into occurrences, and
# `find_user(id_or_upn)`: a user by userPrincipalName in O(1).


class Tenant(Protocol):
    """A whole demo tenant: directory, mailboxes, calendars, contacts, drives, Teams, logs, policies."""

    tenant_id: str
    display_name: str
    default_domain: str

    def collection(self, kind: CollectionKind, *parent_ids: str) -> Collection | None:
        """The collection, or None when a parent does not exist (the emulator answers 404)."""
        ...

    def current_seq(self) -> int:
        """The newest change sequence number in the tenant (a delta token captures it)."""
        ...

    def mailbox_state(self, user_id: str) -> Literal["ok", "no_mailbox", "access_denied"]:
        """no_mailbox -> 404 MailboxNotEnabledForRESTAPI; access_denied -> 403 ErrorAccessDenied (app access policy)."""
        ...

    def has_onedrive(self, user_id: str) -> bool: ...

    def apply(self, op: Mapping[str, Any]) -> Record | None:
        """Apply one admin mutation (create/update/delete of an entity, membership add/remove, audit record);
        appends to the change log and returns the resulting record (None for deletions)."""
        ...
