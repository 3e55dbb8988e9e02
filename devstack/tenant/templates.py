"""Starting records for created entities: a generated record of the same kind, re-identified.

A creation only names the properties a test cares about; the rest comes from a realistic generated record, so
created entities parse with the Graph models exactly like generated ones.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
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
            if kind in ("driveItems", "chatMessages"):  # never copy the root or the opening system event
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


Fixup = Callable[["DemoTenant", Record, tuple[str, ...], int, dict[str, Any]], None]
FIXUPS: dict[str, Fixup] = {}


def _outlook_item(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> None:
    """Created mail/contacts land in the folder parent, else the given parentFolderId, else Inbox / Contacts."""
    user_id = parents[0]
    tag = "mailFolder" if "receivedDateTime" in record else "contactFolder"
    folder = parents[1] if len(parents) > 1 else given.get("parentFolderId") or ids.outlook_id(
        t.seed, tag, user_id, 0, 0)
    folders = t.collection("mailFolders" if tag == "mailFolder" else "contactFolders", user_id)
    default = tag == "contactFolder" and folder == ids.outlook_id(t.seed, tag, user_id, 0, 0)
    if folders is None or (not default and folders.get(folder) is None):  # /contactFolders omits the default
        raise ValueError(f"parentFolderId {folder!r} is not a folder of user {user_id!r}")
    if given.get("parentFolderId", folder) != folder:
        raise ValueError("parentFolderId contradicts the folder the item is created in")
    record["parentFolderId"] = folder
    _new_version(record, seq)


def _new_version(record: Record, seq: int) -> None:
    if "changeKey" in record:
        key = ids.hex32(seq, "changekey", 0)
        record["changeKey"] = key
        record["@odata.etag"] = f'W/"{key}"'


def _event(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> None:
    record["iCalUId"] = "040000008200E00074C5B7101A82E00800000000" + ids.hex32(t.seed, "created-ical", seq).upper()
    _new_version(record, seq)


def _drive_item(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> None:
    """New items go under the drive root unless parentReference says otherwise; never copy the root facet."""
    drive_id = parents[0]
    view = t.collection("driveItems", drive_id)
    root = view.page(0, 1)[0] if view is not None and view.count() else None
    record.pop("root", None)
    if "parentReference" not in given and root is not None:
        record["parentReference"] = {"driveType": root["parentReference"].get("driveType"), "driveId": drive_id,
                                     "id": root["id"], "name": "root", "path": f"/drives/{drive_id}/root:",
                                     "siteId": root["parentReference"].get("siteId")}
    if "folder" in given:
        record.pop("file", None)
        record.pop("image", None)
        record.pop("photo", None)
    elif "file" in given:
        record.pop("folder", None)
    guid = ids.guid(seq, "etag", 0).upper()
    record["eTag"] = f'"{{{guid}}},1"'
    record["cTag"] = f'"c:{{{guid}}},1"'


def _chat_message(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> None:
    """A plain message from the chat's first member, even when the template was a system event."""
    from devstack.tenant.teams import user_identity

    record["chatId"] = parents[0]
    if record.get("messageType") != "message" and "messageType" not in given:
        chat = t.layout.chat(parents[0])
        record["messageType"] = "message"
        record["eventDetail"] = None
        record["from"] = None if chat is None else {
            "application": None, "device": None, "user": user_identity(t.layout, chat.members[0])}
    if "id" not in given:
        record["id"] = str(1_700_000_000_000 + seq)
    record["etag"] = record["id"]


def _directory_object(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int,
                      given: dict[str, Any]) -> None:
    record["deletedDateTime"] = None
    if "appId" in record and "appId" not in given:
        record["appId"] = ids.guid(t.seed, "created-appId", seq)
    if "securityIdentifier" in record:
        record["securityIdentifier"] = f"S-1-12-1-{seq}-{t.seed % 10**9}-{seq * 7}-{seq * 13}"


def _user(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> None:
    """Never reuse the template's sign-in name or mail: emulators look users up by UPN."""
    _directory_object(t, record, parents, seq, given)
    upn = given.get("userPrincipalName") or f"newuser{seq}@{t.default_domain}"
    local = upn.split("@")[0]
    record["userPrincipalName"] = upn
    record["mailNickname"] = given.get("mailNickname", local)
    record["mail"] = given.get("mail", upn)
    record["proxyAddresses"] = given.get("proxyAddresses", [f"SMTP:{record['mail']}"] if record["mail"] else [])
    record["imAddresses"] = given.get("imAddresses", [upn.lower()] if record.get("imAddresses") else [])
    record["identities"] = given.get("identities", [
        {"signInType": "userPrincipalName", "issuer": t.default_domain, "issuerAssignedId": upn}])
    record["displayName"] = given.get("displayName", f"New User {seq}")
    record["userType"] = given.get("userType", "Member")
    record["creationType"] = given.get("creationType")
    record["externalUserState"] = given.get("externalUserState")
    record["externalUserStateChangeDateTime"] = given.get("externalUserStateChangeDateTime")
    for synced in ("onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesImmutableId",
                   "onPremisesLastSyncDateTime", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
                   "onPremisesSyncEnabled", "onPremisesUserPrincipalName"):
        record[synced] = given.get(synced)


def _group(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> None:
    """A created group is a plain group (not a team, no copied mail address) unless the op says otherwise."""
    _directory_object(t, record, parents, seq, given)
    nickname = given.get("mailNickname") or f"newgroup{seq}"
    record["mailNickname"] = nickname
    mail = f"{nickname}@{t.default_domain}" if record.get("mailEnabled") else None
    record["mail"] = given.get("mail", mail)
    record["proxyAddresses"] = given.get("proxyAddresses", [f"SMTP:{mail}"] if mail else [])
    record["resourceProvisioningOptions"] = given.get("resourceProvisioningOptions", [])
    record["resourceBehaviorOptions"] = given.get("resourceBehaviorOptions", [])
    record["displayName"] = given.get("displayName", f"New Group {seq}")


def _app(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> None:
    """Applications and service principals: names derived from the new appId, owned by this tenant."""
    _directory_object(t, record, parents, seq, given)
    app_id = record["appId"]
    if "identifierUris" in record and record["identifierUris"] and "identifierUris" not in given:
        record["identifierUris"] = [f"api://{app_id}"]
    if "servicePrincipalNames" in record and "servicePrincipalNames" not in given:
        record["servicePrincipalNames"] = [app_id]
    if "appOwnerOrganizationId" in record and "appOwnerOrganizationId" not in given:
        record["appOwnerOrganizationId"] = t.tenant_id


def _contact_folder(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> None:
    """POST /users/{id}/contactFolders creates a child of that user's default Contacts folder; a given
    parentFolderId of another contact folder makes a child folder of that one (POST .../childFolders)."""
    default = ids.outlook_id(t.seed, "contactFolder", parents[0], 0, 0)
    parent = given.get("parentFolderId") or default
    folders = t.collection("contactFolders", parents[0])
    if parent != default and (folders is None or folders.get(parent) is None):
        raise ValueError(f"parentFolderId {parent!r} is not a contact folder of user {parents[0]!r}")
    record["parentFolderId"] = parent


def mail_root_id(t: DemoTenant, user_id: str) -> str:
    """The id of the mailbox root (msgfolderroot): the parentFolderId of every top-level folder."""
    from devstack.tenant.outlook import ROOT_FOLDER

    return ids.outlook_id(t.seed, "mailFolder", user_id, ROOT_FOLDER, 0)


def _mail_folder(t: DemoTenant, record: Record, parents: tuple[str, ...], seq: int, given: dict[str, Any]) -> None:
    """POST /users/{id}/mailFolders makes a top-level folder; a parentFolderId (POST .../childFolders) a child.
    A new folder is empty."""
    root = mail_root_id(t, parents[0])
    parent = given.get("parentFolderId") or root
    folders = t.collection("mailFolders", parents[0])
    if parent != root and (folders is None or folders.get(parent) is None):
        raise ValueError(f"parentFolderId {parent!r} is not a mail folder of user {parents[0]!r}")
    record.update({"parentFolderId": parent, "childFolderCount": 0, "unreadItemCount": 0, "totalItemCount": 0,
                   "isHidden": bool(given.get("isHidden", False))})


FIXUPS.update({
    "contactFolders": _contact_folder, "mailFolders": _mail_folder,
    "messages": _outlook_item, "contacts": _outlook_item, "events": _event, "driveItems": _drive_item,
    "chatMessages": _chat_message, "users": _user, "groups": _group, "applications": _app,
    "servicePrincipals": _app,
})
