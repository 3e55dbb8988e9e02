"""Admin operations -> overlay effects. The op vocabulary (all fields JSON):

- ``{"op": "create", "kind": K, "parents": [...], "record": {...}}`` -> the new full record. Fields not given are
  filled from a generated record of the same kind (realistic values), `id` is generated unless given, and
  creation timestamps default to now (or ``"at"``: ISO time of the operation, for reproducible tests).
  Messages/contacts go to the folder named by ``parentFolderId`` (or the folder parent of folderMessages /
  folderContacts; default Inbox / Contacts). Drive items default to the drive root.
- ``{"op": "update", "kind": K, "parents": [...], "id": X, "patch": {...}}`` -> the merged record. Top-level
  properties are replaced (Graph PATCH semantics); modification timestamps/etags advance. Moving an Outlook item
  (changing parentFolderId) is refused: in Exchange a move creates a new id, so express it as delete + create.
- ``{"op": "delete", ...,"id": X}`` -> None; permanent (`@removed: deleted`; drive items: the `deleted` facet).
  Deleting a user also removes it from every group (a `members` change on each group).
- ``{"op": "soft_delete", ...}`` / ``{"op": "restore", ...}``: directory objects (users, groups, applications,
  servicePrincipals) only: moved to / back from deleted items (`@removed: changed`, then an upsert).
- ``{"op": "add_member"|"remove_member", "group_id": G, "member_id": M, "relation": "members"|"owners"}``:
  membership of a user, group or service principal; logged as a `members` change on the group.
- ``{"op": "append", "kind": "directoryAudits"|"signIns", "record": {...}}``: a late-arriving log record; its
  timestamp may be older than records already present (it is still appended at the end).

Every op is validated first and rejected with a ValueError naming the field and the fix; nothing is half-applied.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from devstack.tenant import ids
from devstack.tenant.model import ChangeKind, Record
from devstack.tenant.overlay import FamilyKey, change_effect
from devstack.tenant.rng import iso, iso7, iso_ms, parse_iso

if TYPE_CHECKING:
    from devstack.tenant.tenant import DemoTenant

OPS = ("create", "update", "delete", "soft_delete", "restore", "add_member", "remove_member", "append")
DIRECTORY_KINDS = ("users", "groups", "applications", "servicePrincipals")
OUTLOOK_KINDS = ("messages", "folderMessages", "events", "contacts", "folderContacts", "mailFolders",
                 "contactFolders")
# timestamps a creation sets (when absent from the given record) and that an update advances
CREATED_FIELDS: dict[str, tuple[str, ...]] = {
    "users": ("createdDateTime",), "groups": ("createdDateTime", "renewedDateTime"),
    "applications": ("createdDateTime",), "messages": ("createdDateTime", "lastModifiedDateTime", "receivedDateTime",
                                                       "sentDateTime"),
    "events": ("createdDateTime", "lastModifiedDateTime"), "contacts": ("createdDateTime", "lastModifiedDateTime"),
    "driveItems": ("createdDateTime", "lastModifiedDateTime"), "chatMessages": ("createdDateTime",
                                                                                "lastModifiedDateTime"),
    "chats": ("createdDateTime", "lastUpdatedDateTime"), "channels": ("createdDateTime",),
    "directoryAudits": ("activityDateTime",), "signIns": ("createdDateTime",),
    "conditionalAccessPolicies": ("createdDateTime", "modifiedDateTime"),
}
MODIFIED_FIELDS: dict[str, tuple[str, ...]] = {
    "messages": ("lastModifiedDateTime",), "events": ("lastModifiedDateTime",),
    "contacts": ("lastModifiedDateTime",), "driveItems": ("lastModifiedDateTime",),
    "chatMessages": ("lastModifiedDateTime", "lastEditedDateTime"), "chats": ("lastUpdatedDateTime",),
    "conditionalAccessPolicies": ("modifiedDateTime",),
}
# properties a generated record may lack (facets), which a created record may still set
OPTIONAL_PROPERTIES: dict[str, tuple[str, ...]] = {
    "driveItems": ("file", "folder", "image", "photo", "shared", "video", "audio", "package", "specialFolder",
                   "remoteItem", "location", "malware"),
}
BASE_KIND = {"folderMessages": "messages", "folderContacts": "contacts"}


def _field(op: Mapping[str, Any], name: str, kind: type | tuple[type, ...], hint: str) -> Any:
    if name not in op:
        raise ValueError(f"op {op.get('op')!r} needs field {name!r}: {hint}")
    value = op[name]
    if not isinstance(value, kind):
        raise ValueError(f"op field {name!r} has the wrong type ({type(value).__name__}): {hint}")
    return value


def _now(op: Mapping[str, Any]) -> datetime:
    at = op.get("at")
    if at is None:
        return datetime.now(UTC).replace(microsecond=0)
    if not isinstance(at, str):
        raise ValueError("op field 'at' must be an ISO 8601 string like '2026-01-02T03:04:05Z'")
    try:
        return parse_iso(at).astimezone(UTC)
    except ValueError:
        raise ValueError(f"op field 'at' is not ISO 8601: {at!r} (use e.g. '2026-01-02T03:04:05Z')") from None


def _stamp(kind: str, moment: datetime) -> str:
    if kind in ("directoryAudits", "signIns"):
        return iso7(moment)
    return iso_ms(moment) if kind in ("chatMessages", "chats") else iso(moment)


class Planner:
    """Turns one op into effects against the tenant's current state (nothing is changed until they are applied)."""

    def __init__(self, tenant: DemoTenant, op: Mapping[str, Any]) -> None:
        self.t = tenant
        self.op = op
        self.effects: list[dict[str, Any]] = []
        self.seq = tenant.current_seq()
        self.now = _now(op)

    # --- effect helpers ----------------------------------------------------------------------------------------
    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def put(self, family: FamilyKey, record: Record, new: bool) -> None:
        self.effects.append({"e": "put", "fam": list(family), "id": record["id"], "rec": record, "new": new})

    def hide(self, family: FamilyKey, item_id: str, soft: bool) -> None:
        self.effects.append({"e": "hide", "fam": list(family), "id": item_id, "soft": soft})

    def unhide(self, family: FamilyKey, item_id: str) -> None:
        self.effects.append({"e": "unhide", "fam": list(family), "id": item_id})

    def change(self, family: FamilyKey, kind: ChangeKind, item_id: str, record: Record | None,
               extra_keys: tuple[tuple[str, ...], ...] = (), added: tuple[Record, ...] = (),
               removed: tuple[Record, ...] = ()) -> None:
        keys = [*self.t.log_keys(family, record), *extra_keys]
        self.effects.append(change_effect(keys, self.next_seq(), kind, item_id, record, added, removed))

    # --- ops ---------------------------------------------------------------------------------------------------
    def run(self) -> Record | None:
        name = self.op.get("op")
        if name not in OPS:
            raise ValueError(f"op field 'op' must be one of {', '.join(OPS)}; got {name!r}")
        if name in ("add_member", "remove_member"):
            self.membership(name == "add_member")
            return None
        kind = _field(self.op, "kind", str, "a collection kind such as 'users' or 'messages'")
        parents = tuple(self.op.get("parents") or ())
        if not all(isinstance(p, str) for p in parents):
            raise ValueError("op field 'parents' must be a list of parent id strings, e.g. [user_id, folder_id]")
        view = self.t.collection(kind, *parents)
        if view is None:
            raise ValueError(f"parent {list(parents)} of {kind} does not exist; create the parent first")
        family = self.t.family_key(kind, parents)
        if name in ("create", "append"):
            if name == "append" and kind not in ("directoryAudits", "signIns"):
                raise ValueError("op 'append' is for log records: set kind to 'directoryAudits' or 'signIns'")
            record = _field(self.op, "record", dict, "the new record's properties (Graph camelCase names)")
            return self.create(kind, parents, family, record)
        item_id = _field(self.op, "id", str, f"the id of the {kind} record to change")
        current = view.get(item_id)
        store = self.t.overlay.store(family)
        if name == "restore":
            return self.restore(kind, family, item_id, store.hidden.get(item_id), store.records.get(item_id))
        if current is None:
            raise ValueError(f"{kind} {item_id!r} does not exist under {list(parents)} (already deleted?)")
        if name == "update":
            patch = _field(self.op, "patch", dict, "the properties to replace, e.g. {'displayName': 'New'}")
            return self.update(kind, family, current, patch)
        self.delete(kind, parents, family, current, soft=name == "soft_delete")
        return None

    def create(self, kind: str, parents: tuple[str, ...], family: FamilyKey, given: Record) -> Record:
        from devstack.tenant.templates import fresh_record

        base = fresh_record(self.t, kind, parents, self.seq + 1, given)
        optional = OPTIONAL_PROPERTIES.get(BASE_KIND.get(kind, kind), ())
        unknown = sorted(k for k in given if k not in base and k not in optional and not k.startswith("@odata."))
        if unknown:
            raise ValueError(f"unknown {kind} properties {unknown}; use Graph v1.0 property names such as "
                             f"{sorted(k for k in base if not k.startswith('@'))[:12]}")
        if "id" in given and kind in DIRECTORY_KINDS and not _is_guid(given["id"]):
            raise ValueError(f"{kind} ids are GUIDs; got {given['id']!r}: omit 'id' to get a generated one")
        record = {**base, **given}
        for name in CREATED_FIELDS.get(BASE_KIND.get(kind, kind), ()):
            if name not in given and name in record:
                record[name] = _stamp(kind, self.now)
        existing = self.t.collection(kind, *parents)
        if "id" in given and existing is not None and existing.get(given["id"]) is not None:
            raise ValueError(f"{kind} id {given['id']!r} already exists; omit 'id' to get a generated one")
        self.put(family, record, new=True)
        self.change(family, "upsert", record["id"], record)
        return record

    def update(self, kind: str, family: FamilyKey, current: Record, patch: Record) -> Record:
        bad = sorted(k for k in patch if k not in current and not k.startswith("@odata."))
        if bad:
            raise ValueError(f"unknown {kind} properties {bad} in 'patch'; known: {sorted(current)[:20]}...")
        if "id" in patch and patch["id"] != current["id"]:
            raise ValueError("'patch' cannot change 'id'")
        if family[0] in ("messages", "contacts") and patch.get("parentFolderId", current.get("parentFolderId")) != \
                current.get("parentFolderId"):
            raise ValueError("moving an Outlook item changes its id: delete it and create it in the new folder")
        if kind in ("groupMembers", "groupOwners", "teamMembers", "directoryRoleMembers"):
            raise ValueError(f"{kind} are references: update the user/group itself, or use add_member/remove_member")
        if kind in ("mailFolders", "contactFolders") and "parentFolderId" in patch:
            self._check_folder_move(kind, family[1], current, str(patch["parentFolderId"]))
        record = {k: v for k, v in current.items() if not (k.startswith("@odata.") and k != "@odata.etag")}
        record.update(patch)
        for name in MODIFIED_FIELDS.get(BASE_KIND.get(kind, kind), ()):
            if name not in patch and name in record:
                record[name] = _stamp(kind, self.now)
        _advance_version(kind, record, self.seq + 1)
        self.put(family, record, new=False)
        self.change(family, "upsert", record["id"], record)
        return record

    def delete(self, kind: str, parents: tuple[str, ...], family: FamilyKey, current: Record, soft: bool) -> None:
        if soft and kind not in DIRECTORY_KINDS:
            raise ValueError(f"soft_delete is for directory objects ({', '.join(DIRECTORY_KINDS)}); use delete")
        if kind in ("groupMembers", "groupOwners", "teamMembers", "directoryRoleMembers"):
            raise ValueError("use remove_member to take a member out of a group")
        item_id = current["id"]
        if kind in ("users", "groups", "servicePrincipals"):
            self._drop_memberships(kind, item_id)
        if soft:
            record = {**current, "deletedDateTime": iso(self.now)}
            self.put(family, record, new=False)
            self.hide(family, item_id, soft=True)
            self.change(family, "soft_deleted", item_id, None)
            return
        if kind in ("mailFolders", "contactFolders"):
            self._delete_folder(kind, family[1], current)
            return
        self.hide(family, item_id, soft=False)
        if kind == "driveItems":
            for child in _descendants(self.t, parents[0], current):
                self.hide(family, child["id"], soft=False)
                self.change(family, "deleted", child["id"], child)
            self.change(family, "deleted", item_id, current)
        else:
            self.change(family, "deleted", item_id, current if family[0] in ("messages", "contacts") else None)

    def _folder_tree(self, kind: str, user_id: str, top: Record) -> list[Record]:
        """`top` and every folder below it, parents before children."""
        view = self.t.collection(kind, user_id)
        folders = list(view.iter_from(0)) if view is not None else []
        tree = [top]
        for node in tree:  # grows while it is walked: breadth first
            tree.extend(f for f in folders if f.get("parentFolderId") == node["id"])
        return tree

    def _check_folder_move(self, kind: str, user_id: str, current: Record, parent: str) -> None:
        from devstack.tenant.templates import mail_root_id

        if parent == current.get("parentFolderId"):
            return
        view = self.t.collection(kind, user_id)
        top_level = mail_root_id(self.t, user_id) if kind == "mailFolders" else \
            ids.outlook_id(self.t.seed, "contactFolder", user_id, 0, 0)
        if parent != top_level and (view is None or view.get(parent) is None):
            raise ValueError(f"parentFolderId {parent!r} is not a folder of user {user_id!r}")
        if parent in {f["id"] for f in self._folder_tree(kind, user_id, current)}:
            raise ValueError("a folder cannot move into itself or one of its own child folders")

    def _delete_folder(self, kind: str, user_id: str, top: Record) -> None:
        """Deleting a folder deletes its items and its child folders with theirs (each reported as deleted)."""
        items_kind = "folderMessages" if kind == "mailFolders" else "folderContacts"
        folder_family = self.t.family_key(kind, (user_id,))
        for folder in reversed(self._folder_tree(kind, user_id, top)):  # children first, as Exchange empties them
            items = self.t.collection(items_kind, user_id, folder["id"])
            for item in list(items.iter_from(0)) if items is not None else []:
                item_family = self.t.family_key(items_kind, (user_id, folder["id"]))
                self.hide(item_family, item["id"], soft=False)
                self.change(item_family, "deleted", item["id"], item)
            self.hide(folder_family, folder["id"], soft=False)
            self.change(folder_family, "deleted", folder["id"], None)

    def restore(self, kind: str, family: FamilyKey, item_id: str, soft: bool | None, record: Record | None) -> Record:
        if kind not in DIRECTORY_KINDS:
            raise ValueError(f"restore is for directory objects ({', '.join(DIRECTORY_KINDS)})")
        if not soft or record is None:
            raise ValueError(f"{kind} {item_id!r} is not in deleted items (only soft-deleted objects can be restored)")
        restored = {**record, "deletedDateTime": None}
        self.put(family, restored, new=False)
        self.unhide(family, item_id)
        self.change(family, "upsert", item_id, restored)
        return restored

    def membership(self, add: bool) -> None:
        group_id = _field(self.op, "group_id", str, "the id of the group")
        member_id = _field(self.op, "member_id", str, "the id of the user, group or service principal")
        relation = self.op.get("relation", "members")
        if relation not in ("members", "owners"):
            raise ValueError("op field 'relation' must be 'members' (default) or 'owners'")
        kind = "groupMembers" if relation == "members" else "groupOwners"
        view = self.t.collection(kind, group_id)
        if view is None:
            raise ValueError(f"group {group_id!r} does not exist")
        ref = self._ref(member_id)
        family = self.t.family_key(kind, (group_id,))
        store = self.t.overlay.store(family)
        present = view.get(member_id) is not None
        if add:
            if present:
                raise ValueError(f"{member_id!r} is already in {relation} of group {group_id!r}")
            if member_id == group_id:
                raise ValueError("a group cannot be a member of itself")
            if member_id in store.hidden:
                self.unhide(family, member_id)
            else:
                self.put(family, ref, new=True)
        else:
            if not present:
                raise ValueError(f"{member_id!r} is not in {relation} of group {group_id!r}")
            self.hide(family, member_id, soft=False)
        self._membership_change(family, group_id, ref, add)

    def _membership_change(self, family: FamilyKey, group_id: str, ref: Record, add: bool) -> None:
        extra: tuple[tuple[str, ...], ...] = (("groups",),) if family[0] == "members" else ()
        self.change(family, "members", group_id, None, extra_keys=extra,
                    added=(ref,) if add else (), removed=() if add else (ref,))

    def _ref(self, member_id: str) -> Record:
        for kind in ("users", "groups", "servicePrincipals"):
            view = self.t.collection(kind)
            if view is not None and view.get(member_id) is not None:
                return self.t.ref(kind, member_id)
        raise ValueError(f"member_id {member_id!r} is not an existing user, group or service principal")

    def _drop_memberships(self, kind: str, object_id: str) -> None:
        """A deleted directory object leaves every group (a `members` change each) and every directory role."""
        lay = self.t.layout
        candidates: set[int] = set()
        u = lay.user_index(object_id) if kind == "users" else None
        if u is not None:
            candidates.update(lay.groups_of_user(u))
        g = lay.group_index(object_id) if kind == "groups" else None
        if g is not None and g > 0 and lay.nested_group(g - 1) == g:
            candidates.add(g - 1)
        group_ids = [lay.group_id(c) for c in sorted(candidates)]
        for (family_name, owner), store in self.t.overlay.stores.items():
            if family_name in ("members", "owners") and object_id in store.created_set and owner not in group_ids:
                group_ids.append(owner)
        ref = self.t.ref(kind, object_id)
        for group_id in group_ids:
            for relation in ("groupMembers", "groupOwners"):
                view = self.t.collection(relation, group_id)
                if view is not None and view.contains(object_id):
                    family = self.t.family_key(relation, (group_id,))
                    self.hide(family, object_id, soft=False)
                    self._membership_change(family, group_id, ref, add=False)
        roles = self.t.collection("directoryRoles")
        for role in roles.page(0, roles.count()) if roles is not None else []:
            members = self.t.collection("directoryRoleMembers", role["id"])
            if members is not None and members.contains(object_id):
                family = self.t.family_key("directoryRoleMembers", (role["id"],))
                self.hide(family, object_id, soft=False)
                self.change(family, "members", role["id"], None, removed=(ref,))


def _is_guid(value: object) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _descendants(tenant: DemoTenant, drive_id: str, item: Record) -> list[Record]:
    """Items under a deleted folder (deepest last is fine: the delta reports them all as deleted)."""
    if "folder" not in item or item.get("folder") is None:
        return []
    view = tenant.collection("driveItems", drive_id)
    if view is None:
        return []
    found: list[Record] = []
    pending = {item["id"]}
    for record in view.iter_from(0):
        parent = (record.get("parentReference") or {}).get("id")
        if parent in pending:
            found.append(record)
            if record.get("folder") is not None:
                pending.add(record["id"])
    return found


def _advance_version(kind: str, record: Record, seq: int) -> None:
    token = base64.b64encode(hashlib.blake2b(f"{record['id']}:{seq}".encode(), digest_size=12).digest()).decode()
    if "changeKey" in record:
        record["changeKey"] = token
        record["@odata.etag"] = f'W/"{token}"'
    if kind == "driveItems":
        record["eTag"] = f'"{{{ids.guid(seq, "etag", 0).upper()}}},{seq}"'
        record["cTag"] = f'"c:{{{ids.guid(seq, "etag", 0).upper()}}},{seq}"'
    if kind == "chatMessages" and "etag" in record:
        record["etag"] = str(seq)


def plan_effects(tenant: DemoTenant, op: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                                       Record | None]:
    if not isinstance(op, Mapping):
        raise ValueError("an op must be a JSON object like {'op': 'create', 'kind': 'users', 'record': {...}}")
    try:
        json.dumps(op)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"an op must hold JSON values only (strings for dates, e.g. '2026-01-02T03:04:05Z'): {exc}") \
            from None
    planner = Planner(tenant, op)
    result = planner.run()
    return dict(op), planner.effects, result
