"""Starting records for created entities: a generated record of the same kind, re-identified.

A creation only names the properties a test cares about; the rest comes from a realistic generated record, so
created entities parse with the Graph models exactly like generated ones.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from devstack.tenant import ids
from devstack.tenant.model import Record

if TYPE_CHECKING:
    from devstack.tenant.tenant import DemoTenant

NOT_CREATABLE = ("groupMembers", "groupOwners", "teamMembers", "directoryRoleMembers", "directoryRoleTemplates",
                 "chatMembers")


def _reference_parents(t: DemoTenant, kind: str) -> list[tuple[str, ...]]:
    lay = t.layout
    users = [lay.user_id(u) for u in range(min(lay.sizes.users, 40))]
    if kind in ("chats", "mailFolders", "messages", "events", "contactFolders", "contacts", "drives"):
        return [(u,) for u in users]
    if kind in ("groupDrives",):
        return [(lay.group_id(g),) for g in range(min(lay.sizes.groups, 40))]
    if kind in ("channels",):
        return [(lay.group_id(g),) for g in range(min(lay.sizes.teams, 40))]
    if kind == "chatMessages":
        return [(c.id,) for u in range(min(lay.sizes.users, 10)) for c in lay.chats_of_user(u)]
    if kind == "driveItems":
        found: list[tuple[str, ...]] = []
        for u in users:
            drives = t.collection("drives", u)
            if drives is not None and drives.count():
                found.append((drives.page(0, 1)[0]["id"],))
        return found
    return [()]


def _template(t: DemoTenant, kind: str, parents: tuple[str, ...], seq: int) -> Record:
    candidates = [parents, *_reference_parents(t, kind)] if parents else [()]
    for candidate in candidates:
        view = t.collection(kind, *candidate)
        if view is None:
            continue
        count = view.count()
        if count:
            offset = seq % count
            if kind == "driveItems":  # never copy the root
                offset = max(1, offset) if count > 1 else 0
            return copy.deepcopy(view.page(offset, 1)[0])
    raise ValueError(f"no {kind} exists anywhere in this tenant to start from; give a complete record")


def fresh_record(t: DemoTenant, kind: str, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> Record:
    if kind in NOT_CREATABLE:
        raise ValueError(f"{kind} cannot be created directly; use add_member/remove_member or create the parent")
    base_kind = {"folderMessages": "messages", "folderContacts": "contacts"}.get(kind, kind)
    base_parents = parents[:1] if base_kind != kind else parents
    record = _template(t, base_kind, base_parents, seq)
    record = {k: v for k, v in record.items() if not k.startswith("@odata.") or k == "@odata.etag"}
    record["id"] = given.get("id") or new_id(t, base_kind, parents, seq)
    fixup = FIXUPS.get(base_kind)
    if fixup is not None:
        fixup(t, record, parents, seq, given)
    return record


def new_id(t: DemoTenant, kind: str, parents: tuple[str, ...], seq: int) -> str:
    seed = t.seed
    created = 2**31 + seq
    if kind in ("messages", "events", "contacts"):
        tag = {"messages": "message", "events": "event", "contacts": "contact"}[kind]
        return ids.outlook_id(seed, tag, parents[0], 255, created)
    if kind in ("mailFolders", "contactFolders"):
        tag = "mailFolder" if kind == "mailFolders" else "contactFolder"
        return ids.outlook_id(seed, tag, parents[0], 255, seq % 65536)
    if kind == "driveItems":
        return ids.drive_item_id(seed, parents[0], created)
    if kind == "chats":
        return ids.group_chat_id(seed, created)
    if kind == "channels":
        return f"19:{ids.hex32(seed, 'created-channel', seq)}@thread.tacv2"
    if kind == "chatMessages":
        return str(seq)  # replaced by the fixup with an epoch-milliseconds id
    if kind == "directoryAudits":
        return f"Directory_{ids.guid(seed, 'created-audit', seq)}_{seq}"
    return ids.guid(seed, f"created-{kind}", seq)


Fixup = Any
FIXUPS: dict[str, Fixup] = {}
