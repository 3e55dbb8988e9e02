"""Which application permissions (`roles` claim) Graph accepts per endpoint: any one of them is enough.

Source: the permission tables of the v1.0 API reference (microsoft-graph-docs-contrib `api-reference/v1.0/api/*`,
and `permissions.json` of microsoft-graph-devx-content), least privileged first. RSC permissions
(`*.Group`, `*.Chat`) are granted per resource, never in a tenant-wide app token, so they are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

_DIR_READ = ("Directory.Read.All", "Directory.ReadWrite.All")
_USERS = ("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", *_DIR_READ)
_USERS_DELTA = ("User.Read.All", "User.ReadWrite.All", *_DIR_READ)
_GROUPS = ("Group.ReadBasic.All", "GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", *_DIR_READ)
_GROUPS_DELTA = ("GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", *_DIR_READ)
_GROUP_MEMBERS = ("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All",
                  *_DIR_READ)
_APPS = ("Application.Read.All", "Application.ReadWrite.OwnedBy", "Application.ReadWrite.All", *_DIR_READ)
_ROLES = ("RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory",
          *_DIR_READ)
_MAIL = ("Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite")
_CAL = ("Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite")
_CAL_DELTA = ("Calendars.Read", "Calendars.ReadWrite")
_CONTACTS = ("Contacts.Read", "Contacts.ReadWrite")
_FILES = ("Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All")
_AUDIT = ("AuditLog.Read.All",)

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "users": _USERS,
    "user": _USERS,
    "users_delta": _USERS_DELTA,
    "groups": _GROUPS,
    "groups_delta": _GROUPS_DELTA,
    "group_members": _GROUP_MEMBERS,
    "group_owners": _GROUP_MEMBERS,
    "group_transitive_members": _GROUP_MEMBERS,
    "group_drives": _FILES,
    "applications": _APPS,
    "applications_delta": _APPS,
    "service_principals": _APPS,
    "service_principals_delta": _APPS,
    "teams": ("Team.ReadBasic.All", "TeamSettings.Read.All", "TeamSettings.ReadWrite.All", *_DIR_READ),
    "channels": ("Channel.ReadBasic.All", "ChannelSettings.Read.All", "ChannelSettings.ReadWrite.All"),
    "team_members": ("TeamMember.Read.All", "TeamMember.ReadWrite.All"),
    "chats_all": ("Chat.ReadBasic.All", "Chat.Read.All", "Chat.ReadWrite.All"),
    "user_chats": ("Chat.ReadBasic.All", "Chat.Read.All", "Chat.ReadWrite.All"),
    "chat_messages": ("Chat.Read.All", "Chat.ReadWrite.All"),
    "chat_members": ("ChatMember.Read.All", "ChatMember.ReadWrite.All", "Chat.ReadBasic.All", "Chat.Read.All",
                     "Chat.ReadWrite.All"),
    "user_all_chat_messages": ("Chat.Read.All", "Chat.ReadWrite.All"),
    "user_all_chat_messages_delta": ("Chat.Read.All", "Chat.ReadWrite.All"),
    "messages": _MAIL,
    "mail_folders": _MAIL,
    "mail_folders_delta": _MAIL,
    "mail_folder": _MAIL,
    "mail_child_folders": _MAIL,
    "folder_messages": _MAIL,
    "folder_messages_delta": _MAIL,
    "events": _CAL,
    "calendar_view": _CAL,
    "calendar_view_delta": _CAL_DELTA,
    "contacts": _CONTACTS,
    "contact_folders": _CONTACTS,
    "contact_folders_delta": _CONTACTS,
    "contact_child_folders": _CONTACTS,
    "folder_contacts": _CONTACTS,
    "folder_contacts_delta": _CONTACTS,
    "user_drives": _FILES,
    "user_drive": _FILES,
    "drive_delta": _FILES,
    "user_drive_delta": _FILES,
    "drive_children": _FILES,
    "drive_root_children": _FILES,
    "directory_audits": _AUDIT,
    "sign_ins": _AUDIT,
    "ca_policies": ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"),
    "directory_roles": _ROLES,
    "directory_roles_delta": _ROLES,
    "directory_role_members": _ROLES,
    "directory_role_templates": _ROLES,
}

# With only these permissions Graph leaves these properties out (the "Basic" permissions' documented exclusions).
BASIC_ONLY_EXCLUSIONS: dict[tuple[str, ...], tuple[frozenset[str], frozenset[str]]] = {
    # (endpoints) -> (permissions that are "basic", properties removed when the token holds only basic ones)
    ("messages", "folder_messages", "folder_messages_delta"): (
        frozenset({"Mail.ReadBasic.All", "Mail.ReadBasic"}),
        frozenset({"body", "bodyPreview", "uniqueBody", "attachments", "extensions", "singleValueExtendedProperties",
                   "multiValueExtendedProperties"}),
    ),
    ("events", "calendar_view"): (
        frozenset({"Calendars.ReadBasic"}),
        frozenset({"body", "bodyPreview", "attachments", "extensions", "singleValueExtendedProperties",
                   "multiValueExtendedProperties"}),
    ),
}


def allowed(endpoint: str, roles: Iterable[str]) -> bool:
    accepted = PERMISSIONS[endpoint]
    return any(role in accepted for role in roles)


def hidden_properties(endpoint: str, roles: Iterable[str]) -> frozenset[str]:
    """Properties to drop because the token holds only a "Basic" permission for this endpoint."""
    granted = set(roles)
    for endpoints, (basic, excluded) in BASIC_ONLY_EXCLUSIONS.items():
        if endpoint in endpoints:
            full = set(PERMISSIONS[endpoint]) - basic
            if not (granted & full):
                return excluded
    return frozenset()
