"""Wires the Outlook, Teams, files and logs generators into a tenant as per-kind sources.

Each factory receives the parent ids, checks that the parents exist (including created and deleted ones, through
the tenant's own views) and returns the base source, or None for a missing parent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from devstack.tenant import ids
from devstack.tenant.files import Files
from devstack.tenant.layout import DEFAULT_CONTACT_FOLDER, ChatRef
from devstack.tenant.logs import Logs
from devstack.tenant.model import Record
from devstack.tenant.outlook import Outlook
from devstack.tenant.teams import Teams
from devstack.tenant.views import EMPTY, IndexSource, ListSource, Source, View

if TYPE_CHECKING:
    from devstack.tenant.tenant import DemoTenant


def register_all(tenant: DemoTenant) -> None:
    Wiring(tenant).install()


class Wiring:
    def __init__(self, tenant: DemoTenant) -> None:
        self.t = tenant
        self.lay = tenant.layout
        self.seed = tenant.seed
        self.outlook = Outlook(self.lay)
        self.teams = Teams(self.lay)
        self.files = Files(self.lay)
        self.logs = Logs(self.lay)

    def install(self) -> None:
        t, lay, logs = self.t, self.lay, self.logs
        sizes = lay.sizes
        t.register("directoryAudits", lambda p: IndexSource(sizes.directory_audits, logs.audit, logs.audit_index))
        t.register("signIns", lambda p: IndexSource(
            sizes.sign_ins, logs.sign_in, lambda v: ids.guid_index(self.seed, "signIn", v)))
        t.register("conditionalAccessPolicies", lambda p: IndexSource(
            sizes.conditional_access_policies, logs.ca_policy, lambda v: ids.guid_index(self.seed, "caPolicy", v)))
        t.register("mailFolders", self.mail_folders, self.mail_folder_renderer)
        t.register("messages", self.messages)
        t.register("folderMessages", self.folder_messages)
        t.register("events", self.events)
        t.register("contactFolders", self.contact_folders)
        t.register("contacts", self.default_contacts)
        t.register("folderContacts", self.folder_contacts)
        t.register("chats", self.chats)
        t.register("chatMembers", self.chat_members)
        t.register("chatMessages", self.chat_messages)
        t.register("channels", self.channels)
        t.register_renderer("teamMembers", self.team_member_renderer)  # the source: the group's members
        t.register("drives", self.drives)
        t.register("groupDrives", self.group_drives)
        t.register("driveItems", self.drive_items)

    # --- parents -----------------------------------------------------------------------------------------------
    def _user(self, user_id: str) -> tuple[bool, int | None]:
        """(exists, base index) of a user, honouring creations and deletions."""
        users = self.t.collection("users")
        exists = users is not None and users.contains(user_id)
        return exists, self.lay.user_index(user_id) if exists else None

    def _group(self, group_id: str) -> Record | None:
        groups = self.t.collection("groups")
        return groups.get(group_id) if groups is not None else None

    # --- Outlook -----------------------------------------------------------------------------------------------
    def mail_folders(self, parents: tuple[str, ...]) -> Source | None:
        exists, u = self._user(parents[0])
        if not exists:
            return None
        # every folder of the mailbox, nested ones included (Graph's mailFolders/delta view); the list endpoints pick
        # the top level or one folder's children by parentFolderId. Generated on demand: most requests only check
        # that a folder exists (each message page does).
        user_id, outlook, total = parents[0], self.outlook, self.lay.mail_folder_total(u)

        def locate(folder_id: str) -> int | None:
            return next((f for f in range(total) if outlook.mail_folder_id(user_id, f) == folder_id), None)

        return IndexSource(total, lambda f: outlook.mail_folder(user_id, u, f), locate)

    def mail_folder_renderer(self, parents: tuple[str, ...]) -> Callable[[Record], Record]:
        """Folder counts follow the mailbox's current state: messages created and deleted, folders added, moved
        and deleted."""
        user_id = parents[0]
        store = self.t.overlay.store(("mailFolders", user_id))
        children: dict[str, int] | None = None
        if store.version:  # the hierarchy was changed: count children from the current folders
            raw = self.mail_folders(parents)
            if raw is not None:
                view = View("mailFolders", raw, self.t.overlay, ("mailFolders", user_id), ("mailFolders", user_id))
                children = {}
                for folder in view.iter_from(0):
                    parent = str(folder.get("parentFolderId"))
                    children[parent] = children.get(parent, 0) + 1

        def render(record: Record) -> Record:
            out = record
            if children is not None and children.get(record["id"], 0) != record.get("childFolderCount"):
                out = {**out, "childFolderCount": children.get(record["id"], 0)}
            view = self._folder_view(user_id, record["id"])
            if view is None:
                return out
            total = view.count()
            if total == record.get("totalItemCount"):
                return out
            return {**out, "totalItemCount": total, "unreadItemCount": min(record["unreadItemCount"], total)}

        return render

    def _folder_view(self, user_id: str, folder_id: str) -> View | None:
        source = self._folder_source(user_id, folder_id)
        if source is None:
            return None
        return View("folderMessages", source, self.t.overlay, ("messages", user_id),
                    ("folderMessages", user_id, folder_id), accept=lambda r: r.get("parentFolderId") == folder_id)

    def messages(self, parents: tuple[str, ...]) -> Source | None:
        user_id = parents[0]
        exists, u = self._user(user_id)
        if not exists:
            return None
        if u is None:
            return EMPTY
        base_u = u
        lay, outlook = self.lay, self.outlook

        def locate(item_id: str) -> int | None:
            parsed = ids.outlook_parse(self.seed, item_id)
            if parsed is None or parsed[0] != "message" or parsed[1] != user_id:
                return None
            _, _, folder, i = parsed
            return i if lay.folder_of(base_u, i) == folder else None

        return IndexSource(lay.messages_in(base_u), lambda i: outlook.message(base_u, i), locate)

    def _folder_source(self, user_id: str, folder_id: str) -> Source | None:
        lay, outlook = self.lay, self.outlook
        u = lay.user_index(user_id)
        parsed = ids.outlook_parse(self.seed, folder_id)
        base_folder = parsed is not None and parsed[0] == "mailFolder" and parsed[1] == user_id and \
            parsed[2] < self.lay.mail_folder_total(u)
        if not base_folder:
            store = self.t.overlay.store(("mailFolders", user_id))
            return EMPTY if folder_id in store.created_set and folder_id not in store.hidden else None
        assert parsed is not None
        folder = parsed[2]
        if u is None:
            return EMPTY

        def locate(item_id: str) -> int | None:
            found = ids.outlook_parse(self.seed, item_id)
            if found is None or found[0] != "message" or found[1] != user_id or found[2] != folder:
                return None
            f, k = lay.global_to_folder(base_u, found[3])
            return k if f == folder else None

        base_u = u
        return IndexSource(lay.folder_count(base_u, folder),
                           lambda k: outlook.message(base_u, lay.folder_to_global(base_u, folder, k)), locate)

    def folder_messages(self, parents: tuple[str, ...]) -> Source | None:
        user_id, folder_id = parents
        exists, _ = self._user(user_id)
        folders = self.t.collection("mailFolders", user_id) if exists else None
        if folders is None or not folders.contains(folder_id):
            return None
        return self._folder_source(user_id, folder_id)

    def events(self, parents: tuple[str, ...]) -> Source | None:
        user_id = parents[0]
        exists, u = self._user(user_id)
        if not exists:
            return None
        if u is None or self.lay.mailbox_state(u) == "no_mailbox":
            return EMPTY
        base_u = u

        def locate(item_id: str) -> int | None:
            parsed = ids.outlook_parse(self.seed, item_id)
            if parsed is None or parsed[0] != "event" or parsed[1] != user_id:
                return None
            return parsed[3]

        return IndexSource(self.lay.sizes.events_per_user, lambda k: self.outlook.event(base_u, k), locate)

    def contact_folders(self, parents: tuple[str, ...]) -> Source | None:
        exists, _ = self._user(parents[0])
        if not exists:
            return None
        # Graph lists the folders IN the default Contacts folder, not the default folder itself
        return ListSource([self.outlook.contact_folder(parents[0], f) for f in range(self.lay.contact_folder_count())
                           if f != DEFAULT_CONTACT_FOLDER])

    def default_contacts(self, parents: tuple[str, ...]) -> Source | None:
        if not self._user(parents[0])[0]:
            return None
        return self.folder_contacts((parents[0], self.outlook.contact_folder_id(parents[0], DEFAULT_CONTACT_FOLDER)))

    def folder_contacts(self, parents: tuple[str, ...]) -> Source | None:
        user_id, folder_id = parents
        exists, u = self._user(user_id)
        folders = self.t.collection("contactFolders", user_id) if exists else None
        if folders is None:
            return None
        default = self.outlook.contact_folder_id(user_id, DEFAULT_CONTACT_FOLDER)
        if not (folder_id == default or folders.contains(folder_id)):
            return None  # the default folder is addressable by id although /contactFolders omits it
        parsed = ids.outlook_parse(self.seed, folder_id)
        if u is None or parsed is None or parsed[0] != "contactFolder" or self.lay.mailbox_state(u) == "no_mailbox":
            return EMPTY
        folder = parsed[2]
        base_u = u

        def locate(item_id: str) -> int | None:
            found = ids.outlook_parse(self.seed, item_id)
            if found is None or found[0] != "contact" or found[1] != user_id or found[2] != folder:
                return None
            return found[3]

        return IndexSource(self.lay.contacts_in(base_u, folder), lambda k: self.outlook.contact(base_u, folder, k),
                           locate)

    # --- Teams -------------------------------------------------------------------------------------------------
    def chats(self, parents: tuple[str, ...]) -> Source | None:
        exists, u = self._user(parents[0])
        if not exists:
            return None
        if u is None:
            return EMPTY
        # a deleted member does not remove the chat (its history stays with the other members)
        return ListSource([self.teams.chat(c, u) for c in self.lay.chats_of_user(u)])

    def _chat(self, chat_id: str) -> tuple[bool, ChatRef | None]:
        chat = self.lay.chat(chat_id)
        if chat is not None:
            return True, chat
        for (family, _), store in self.t.overlay.stores.items():
            if family == "chats" and chat_id in store.created_set and chat_id not in store.hidden:
                return True, None
        return False, None

    def chat_members(self, parents: tuple[str, ...]) -> Source | None:
        exists, chat = self._chat(parents[0])
        if not exists:
            return None
        if chat is None:
            return EMPTY
        return ListSource([self.teams.chat_member(chat, m) for m in chat.members])

    def chat_messages(self, parents: tuple[str, ...]) -> Source | None:
        exists, chat = self._chat(parents[0])
        if not exists:
            return None
        if chat is None:
            return EMPTY
        found = chat
        return IndexSource(self.lay.chat_message_count(found), lambda k: self.teams.chat_message(found, k),
                           lambda v: self.teams.chat_message_index(found, v))

    def channels(self, parents: tuple[str, ...]) -> Source | None:
        group = self._group(parents[0])
        if group is None or "Team" not in (group.get("resourceProvisioningOptions") or []):
            return None
        g = self.lay.group_index(parents[0])
        if g is None:
            return EMPTY
        return ListSource([self.teams.channel(g, c) for c in range(self.lay.channel_count(g))])

    def team_member_renderer(self, parents: tuple[str, ...]) -> Callable[[Record], Record]:
        team_id = parents[0]
        g = self.lay.group_index(team_id)
        owners_view = self.t.collection("groupOwners", team_id)

        def render(ref: Record) -> Record:
            users = self.t.collection("users")
            user = users.get(ref["id"]) if users is not None else None
            owner = owners_view is not None and owners_view.get(ref["id"]) is not None
            return self.teams.team_member(team_id, g, user or {"id": ref["id"]}, owner)

        return render

    # --- files -------------------------------------------------------------------------------------------------
    def drives(self, parents: tuple[str, ...]) -> Source | None:
        exists, u = self._user(parents[0])
        if not exists:
            return None
        if u is None or not self.lay.has_onedrive(u):
            return EMPTY
        return ListSource([self.files.drive("u", u)])

    def group_drives(self, parents: tuple[str, ...]) -> Source | None:
        group = self._group(parents[0])
        if group is None:
            return None
        g = self.lay.group_index(parents[0])
        if g is None or "Unified" not in (group.get("groupTypes") or []):
            return EMPTY
        return ListSource([self.files.drive("g", g, group.get("displayName"))])

    def drive_items(self, parents: tuple[str, ...]) -> Source | None:
        parsed = ids.drive_parse(self.seed, parents[0])
        if parsed is None:
            return None
        tag, index = parsed
        if tag == "u":
            if index >= self.lay.sizes.users or not self.lay.has_onedrive(index):
                return None
            if not self._user(self.lay.user_id(index))[0]:
                return None
        elif tag == "g":
            if index >= self.lay.sizes.groups or self.lay.group_flavour(index) != "unified":
                return None
            if self._group(self.lay.group_id(index)) is None:
                return None
        else:
            return None
        files = self.files
        return IndexSource(files.item_count(tag, index), lambda i: files.item(tag, index, i),
                           lambda v: files.item_index(tag, index, v))
