"""`DemoTenant`: resolves (kind, parent ids) to a `View` over the generated base and the mutation overlay.

Mutations (`apply`) are turned into overlay effects by `mutations.py`; this module only wires sources, stores and
change-log keys together and answers the per-parent conditions (mailbox state, OneDrive).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from devstack.tenant import ids
from devstack.tenant.directory import ROLE_TEMPLATES, Directory
from devstack.tenant.layout import DEFAULT_ANCHOR, DEFAULT_CONTACT_FOLDER, Layout
from devstack.tenant.model import CollectionKind, Record
from devstack.tenant.overlay import FamilyKey, Journal, LogKey, Overlay
from devstack.tenant.sizes import TenantSizes
from devstack.tenant.views import EMPTY, IndexSource, ListSource, Source, View

KINDS: tuple[CollectionKind, ...] = get_args(CollectionKind)  # the contract's kinds, in its order
PARENT_COUNT: dict[str, int] = {str(k): 0 for k in KINDS} | {
    "groupMembers": 1, "groupOwners": 1, "groupDrives": 1, "channels": 1, "teamMembers": 1, "chats": 1,
    "mailFolders": 1, "messages": 1, "events": 1, "contactFolders": 1, "contacts": 1, "drives": 1,
    "folderMessages": 2, "folderContacts": 2, "chatMessages": 1, "chatMembers": 1, "driveItems": 1,
    "directoryRoleMembers": 1,
}
# kind -> the overlay family its records live in (several kinds can be views of one family)
FAMILY: dict[str, str] = {k: k for k in KINDS} | {
    "groupMembers": "members", "teamMembers": "members", "groupOwners": "owners", "folderMessages": "messages",
    "folderContacts": "contacts", "directoryRoleMembers": "roleMembers",
}
ODATA_TYPES = {"users": "#microsoft.graph.user", "groups": "#microsoft.graph.group",
               "servicePrincipals": "#microsoft.graph.servicePrincipal"}


class DemoTenant:
    """A whole demo tenant generated on demand from (seed, sizes, anchor), plus its persisted mutations."""

    def __init__(self, seed: int, sizes: TenantSizes, state_dir: Path | None = None,
                 anchor: datetime = DEFAULT_ANCHOR) -> None:
        self.layout = Layout(seed, sizes, anchor)
        self.seed = seed
        self.sizes = sizes
        self.tenant_id = self.layout.tenant_id
        self.display_name = self.layout.display_name
        self.default_domain = self.layout.default_domain
        self.directory = Directory(self.layout)
        self.overlay = Overlay()
        self._extra_sources: dict[str, Callable[[tuple[str, ...]], Source | None]] = {}
        self._renderers: dict[str, Callable[[tuple[str, ...]], Callable[[Record], Record]]] = {}
        self._register_generators()
        self.journal: Journal | None = None
        if state_dir is not None:
            self.journal = Journal(Path(state_dir), {
                "seed": seed, "sizes": sizes.to_json(), "anchor": self.layout.anchor.isoformat(),
            })
            for effects in self.journal.entries():
                self.overlay.apply_effects(effects)

    # --- the Tenant protocol -----------------------------------------------------------------------------------
    def collection(self, kind: CollectionKind | str, *parent_ids: str) -> View | None:
        if kind not in PARENT_COUNT:
            raise ValueError(f"unknown collection kind {kind!r}; known kinds: {', '.join(KINDS)}")
        if len(parent_ids) != PARENT_COUNT[kind]:
            raise ValueError(f"{kind} takes {PARENT_COUNT[kind]} parent id(s), got {len(parent_ids)}")
        source = self._source(kind, parent_ids)
        if source is None:
            return None
        family = self.family_key(kind, parent_ids)
        return View(kind, source, self.overlay, family, (kind, *parent_ids),  # type: ignore[arg-type]
                    accept=self._acceptor(kind, parent_ids), render=self._renderer(kind, parent_ids),
                    source_id=self._team_member_user if kind == "teamMembers" else None)

    def current_seq(self) -> int:
        return self.overlay.log.seq

    def mailbox_state(self, user_id: str) -> Literal["ok", "no_mailbox", "access_denied"]:
        i = self.layout.user_index(user_id)
        return "ok" if i is None else self.layout.mailbox_state(i)

    def has_onedrive(self, user_id: str) -> bool:
        """Created users have none yet (OneDrive is provisioned on first use); unknown users have none either."""
        i = self.layout.user_index(user_id)
        return i is not None and self.layout.has_onedrive(i)

    def apply(self, op: Mapping[str, Any]) -> Record | None:
        from devstack.tenant.mutations import plan_effects

        normalized, effects, result = plan_effects(self, op)
        if self.journal is not None:  # journal first: an op that could not be persisted is not applied either
            self.journal.append(normalized, effects)
        self.overlay.apply_effects(effects)
        return copy.deepcopy(result)  # the caller may reshape it; the overlay keeps its own

    def find_user(self, key: str) -> Record | None:
        """A user by id or userPrincipalName (case-insensitive), without scanning the directory.

        Generated UPNs carry the user's index (`AdeleV12@...`, `adele.12_fabrikam.com#EXT#@...`), so the candidate
        is decoded and then confirmed against the current record; created and renamed users come from the overlay.
        """
        users = self.collection("users")
        if users is None:
            return None
        found = users.get(key)
        if found is not None or "@" not in key:
            return found
        wanted = key.lower()
        for record in self.overlay.store(("users", "")).records.values():
            if str(record.get("userPrincipalName", "")).lower() == wanted and users.contains(record["id"]):
                return users.get(record["id"])
        local = wanted.split("#ext#")[0].split("@")[0]
        digits = local.split(".", 1)[1].split("_")[0] if "#ext#" in wanted and "." in local else \
            local[len(local.rstrip("0123456789")):]
        index = int(digits) if digits.isdigit() else 0
        if index >= self.sizes.users:
            return None
        candidate = users.get(self.layout.user_id(index))
        if candidate is not None and str(candidate.get("userPrincipalName", "")).lower() == wanted:
            return candidate
        return None

    def calendar_view(self, user_id: str, start: datetime | str, end: datetime | str) -> list[Record] | None:
        """Events overlapping [start, end) as calendarView lists them: single events and exceptions as they are,
        series masters replaced by their occurrences; sorted by start. None when the user does not exist."""
        from devstack.tenant.recurrence import occurrences
        from devstack.tenant.rng import parse_iso

        events = self.collection("events", user_id)
        if events is None:
            return None
        lo = parse_iso(start) if isinstance(start, str) else start
        hi = parse_iso(end) if isinstance(end, str) else end
        found: list[Record] = []
        for event in events.iter_from(0):
            if event.get("type") == "seriesMaster":
                found += occurrences(event, lo, hi)
                continue
            ev_start = parse_iso(event["start"]["dateTime"][:19] + "Z")
            ev_end = parse_iso(event["end"]["dateTime"][:19] + "Z")
            if ev_start < hi and ev_end > lo:
                found.append(event)
        found.sort(key=lambda e: (e["start"]["dateTime"], e["id"]))
        return found

    # --- wiring ------------------------------------------------------------------------------------------------
    @staticmethod
    def family_key(kind: str, parent_ids: tuple[str, ...]) -> FamilyKey:
        return FAMILY[kind], parent_ids[0] if parent_ids else ""

    def log_keys(self, family: FamilyKey, record: Record | None) -> list[LogKey]:
        """The collection keys a change to `record` in `family` is visible under (changes_since)."""
        name, owner = family
        parents = (owner,) if owner else ()
        if name == "messages":
            keys: list[LogKey] = [("messages", owner)]
            if record and record.get("parentFolderId"):
                keys.append(("folderMessages", owner, record["parentFolderId"]))
            return keys
        if name == "contacts":
            folder = (record or {}).get("parentFolderId")
            keys = [("folderContacts", owner, folder)] if folder else []
            if folder and self._is_default_contact_folder(owner, folder):
                keys.append(("contacts", owner))
            return keys
        if name == "members":
            return [("groupMembers", owner), ("teamMembers", owner)]
        if name == "owners":
            return [("groupOwners", owner)]
        if name == "roleMembers":
            return [("directoryRoleMembers", owner)]
        return [(name, *parents)]

    def _is_default_contact_folder(self, user_id: str, folder_id: str) -> bool:
        return folder_id == ids.outlook_id(self.seed, "contactFolder", user_id, DEFAULT_CONTACT_FOLDER, 0)

    def _acceptor(self, kind: str, parent_ids: tuple[str, ...]) -> Callable[[Record], bool]:
        if kind in ("folderMessages", "folderContacts"):
            folder = parent_ids[1]
            return lambda r: r.get("parentFolderId") == folder
        if kind == "contacts":
            user = parent_ids[0]
            return lambda r: self._is_default_contact_folder(user, str(r.get("parentFolderId")))
        if kind == "teamMembers":
            return lambda r: r.get("@odata.type") == "#microsoft.graph.user"
        return lambda r: True

    def _renderer(self, kind: str, parent_ids: tuple[str, ...]) -> Callable[[Record], Record]:
        if kind in ("groupMembers", "groupOwners", "directoryRoleMembers"):
            return self.directory_object
        factory = self._renderers.get(kind)
        if factory is not None:
            return factory(parent_ids)
        return lambda r: r

    def directory_object(self, ref: Record) -> Record:
        """A member ref ({@odata.type, id}) rendered as the full directory object, as /members returns it."""
        odata_type = ref.get("@odata.type", "")
        kind = {v: k for k, v in ODATA_TYPES.items()}.get(odata_type)
        if kind is None:
            return ref
        view = self.collection(kind)
        record = view.get(ref["id"]) if view is not None else None
        return ref if record is None else {"@odata.type": odata_type, **record}

    def _source(self, kind: str, parents: tuple[str, ...]) -> Source | None:
        lay, d = self.layout, self.directory
        seed, sizes = self.seed, self.sizes
        if kind == "users":
            return IndexSource(sizes.users, d.user, lay.user_index)
        if kind == "groups":
            return IndexSource(sizes.groups, d.group, lay.group_index)
        if kind == "applications":
            return IndexSource(sizes.applications, d.application,
                               lambda v: ids.guid_index(seed, "application", v))
        if kind == "servicePrincipals":
            return IndexSource(sizes.service_principals, d.service_principal,
                               lambda v: ids.guid_index(seed, "servicePrincipal", v))
        if kind == "directoryRoleTemplates":
            template_index = {t[0]: i for i, t in enumerate(ROLE_TEMPLATES)}
            return IndexSource(len(ROLE_TEMPLATES), d.role_template, template_index.get)
        if kind == "directoryRoles":
            return IndexSource(min(sizes.directory_roles, len(ROLE_TEMPLATES)), d.directory_role,
                               lambda v: ids.guid_index(seed, "directoryRole", v))
        if kind in ("groupMembers", "groupOwners", "teamMembers"):
            return self._membership_source(kind, parents[0])
        if kind == "directoryRoleMembers":
            role = self.collection("directoryRoles")
            if role is None or role.get(parents[0]) is None:
                return None
            k = ids.guid_index(seed, "directoryRole", parents[0])
            members = [] if k is None else d.role_member_indices(k)
            return ListSource([self.ref("users", lay.user_id(u)) for u in members])
        extra = self._extra_sources.get(kind)
        if extra is not None:
            return extra(parents)
        raise NotImplementedError(f"collection kind {kind!r} is not generated yet")

    @staticmethod
    def _team_member_user(member_id: str) -> str | None:
        parsed = ids.conversation_member_parse(member_id)
        return None if parsed is None else parsed[1]

    @staticmethod
    def ref(kind: str, item_id: str) -> Record:
        return {"@odata.type": ODATA_TYPES[kind], "id": item_id}

    def _membership_source(self, kind: str, group_id: str) -> Source | None:
        groups = self.collection("groups")
        group = groups.get(group_id) if groups is not None else None
        if group is None:
            return None
        if kind == "teamMembers" and "Team" not in (group.get("resourceProvisioningOptions") or []):
            return None
        g = self.layout.group_index(group_id)
        if g is None:
            return EMPTY
        return MembershipSource(self, g, owners=kind == "groupOwners")

    def _register_generators(self) -> None:
        """The directory kinds are wired here; Outlook, Teams, files and logs register their own sources."""
        from devstack.tenant.register import register_all

        register_all(self)

    def register(self, kind: str, source: Callable[[tuple[str, ...]], Source | None],
                 renderer: Callable[[tuple[str, ...]], Callable[[Record], Record]] | None = None) -> None:
        """Adds a kind: `source(parent_ids)` gives its base records or None for a missing parent."""
        self._extra_sources[kind] = source
        if renderer is not None:
            self.register_renderer(kind, renderer)

    def register_renderer(self, kind: str, renderer: Callable[[tuple[str, ...]], Callable[[Record], Record]]) -> None:
        """How a kind's records are shown (team members are group member refs shown as conversationMembers)."""
        self._renderers[kind] = renderer


class MembershipSource:
    """A group's members (or owners) as directory object refs: a window of consecutive users, then maybe a group."""

    def __init__(self, tenant: DemoTenant, g: int, owners: bool) -> None:
        lay = tenant.layout
        self._lay = lay
        self._tenant = tenant
        self._start, size = lay.group_window(g)
        self._users = lay.owner_count(g) if owners else size
        nested = None if owners else lay.nested_group(g)
        self._nested = None if nested is None else lay.group_id(nested)

    def count(self) -> int:
        return self._users + (1 if self._nested else 0)

    def make(self, index: int) -> Record:
        if index < self._users:
            n = self._lay.sizes.users
            return self._tenant.ref("users", self._lay.user_id((self._start + index) % n))
        assert self._nested is not None
        return self._tenant.ref("groups", self._nested)

    def index_of(self, item_id: str) -> int | None:
        if item_id == self._nested:
            return self._users
        u = self._lay.user_index(item_id)
        if u is None:
            return None
        j = (u - self._start) % self._lay.sizes.users
        return j if j < self._users else None
