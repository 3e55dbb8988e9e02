"""The 22 streams as data: the orchestrator plans from it, the engine builds requests from it.

Every entry uses a path that works with an application (app-only) token; the delegated-only shortcuts peers use
(`GET /chats`, `/me/...`) are deliberately absent. Permissions are application permissions accepted by the path the
engine really reads (the delta path where there is one), least-privileged first; any one of them is enough, and a
403 names them so an admin knows exactly what to grant. (Delegated-only names such as Group.ReadBasic.All have no
place here: a daemon cannot be granted them. /groups/delta takes GroupMember.Read.All at least, calendarView/delta
Calendars.Read.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Workload = Literal["directory", "teams", "outlook", "files", "reports", "policy"]


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One stream. `path` is relative to the Graph version root; `{parent}` is replaced by the parent id."""

    name: str
    path: str
    primary_key: tuple[str, ...]
    permissions: tuple[str, ...]
    workload: Workload
    parent: str | None = None
    """Stream whose ids fill `{parent}` in `path`."""
    parent_key: str | None = None
    """Column injected into every record with the parent id (also part of the primary key); only when fan_out."""
    fan_out: bool = True
    """True: one partition per parent id. False: one partition walks all parents itself and de-duplicates
    (chats are shared by their members, so per-user partitions would emit each chat once per member)."""
    default_select: tuple[str, ...] | None = None
    """`$select` when the stream config names none; None = Graph's default property set."""
    max_page_size: int | None = 999
    """Largest `$top` the endpoint honours; None = the endpoint takes no `$top` (it does not page, or ignores it)."""
    date_column: str | None = None
    """Column the date window filters on; None = the stream has no date window."""
    date_ops: tuple[str, str] = ("ge", "lt")
    """Comparison operators Graph accepts on `date_column` (chat messages accept only `gt`/`lt`)."""
    date_orderby: str | None = None
    """`$orderby` Graph requires alongside a date `$filter` (else it ignores the filter)."""
    delta_path: str | None = None
    """Delta query path for incremental syncs, when Graph offers one for app-only callers."""
    ends_with_delta_link: bool = False
    """The full read itself is a delta round (drive items): the last page carries `@odata.deltaLink`."""

    @property
    def partition_parent(self) -> str | None:
        """The stream whose ids the orchestrator fans out over, or None for one unpartitioned copy."""
        return self.parent if self.fan_out else None

    @property
    def id_column(self) -> str:
        """The Graph key of the record itself (the last primary-key column; parent keys come first)."""
        return self.primary_key[-1]

    def path_for(self, parent_id: str | None) -> str:
        """The request path for one partition; ids are percent-encoded so `/`, `#`, `?` cannot reshape the URL."""
        if self.parent is None:
            return self.path
        if parent_id is None:
            raise ValueError(f"stream {self.name!r} needs a {self.parent_key} (its parent stream is {self.parent!r})")
        return self.path.replace("{parent}", quote_segment(parent_id))


def quote_segment(value: str) -> str:
    """Percent-encode one path segment (everything but unreserved characters)."""
    from urllib.parse import quote

    return quote(value, safe="-._~")


_DIR: Workload = "directory"

USER_SELECT = (
    "id", "displayName", "userPrincipalName", "mail", "givenName", "surname", "jobTitle", "department",
    "officeLocation", "businessPhones", "mobilePhone", "preferredLanguage", "accountEnabled", "userType",
    "createdDateTime",
)

STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("users", "/users", ("id",), ("User.Read.All",), _DIR, default_select=USER_SELECT,
               delta_path="/users/delta"),
    StreamSpec("applications", "/applications", ("id",), ("Application.Read.All",), _DIR,
               delta_path="/applications/delta"),
    StreamSpec("service_principals", "/servicePrincipals", ("id",), ("Application.Read.All",), _DIR,
               delta_path="/servicePrincipals/delta"),
    StreamSpec("groups", "/groups", ("id",), ("GroupMember.Read.All", "Group.Read.All"), _DIR,
               delta_path="/groups/delta"),
    StreamSpec("group_member", "/groups/{parent}/members", ("group_id", "id"),
               ("GroupMember.Read.All", "Group.Read.All"), _DIR, parent="groups", parent_key="group_id"),
    StreamSpec("group_owner", "/groups/{parent}/owners", ("group_id", "id"),
               ("GroupMember.Read.All", "Group.Read.All"), _DIR, parent="groups", parent_key="group_id"),
    StreamSpec("teams", "/teams", ("id",), ("Team.ReadBasic.All",), "teams"),
    StreamSpec("channels", "/teams/{parent}/channels", ("team_id", "id"), ("Channel.ReadBasic.All",), "teams",
               parent="teams", parent_key="team_id", max_page_size=None),
    StreamSpec("team_member", "/teams/{parent}/members", ("team_id", "id"), ("TeamMember.Read.All",), "teams",
               parent="teams", parent_key="team_id", max_page_size=None),
    StreamSpec("chats", "/users/{parent}/chats", ("id",), ("Chat.ReadBasic.All", "Chat.Read.All"), "teams",
               parent="users", parent_key="user_id", fan_out=False, max_page_size=50),
    StreamSpec("chat_messages", "/chats/{parent}/messages", ("chat_id", "id"), ("Chat.Read.All",), "teams",
               parent="chats", parent_key="chat_id", max_page_size=50, date_column="lastModifiedDateTime",
               date_ops=("gt", "lt"), date_orderby="lastModifiedDateTime desc"),
    StreamSpec("mail_messages", "/users/{parent}/messages", ("user_id", "id"),
               ("Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"), "outlook", parent="users",
               parent_key="user_id", max_page_size=1000, date_column="receivedDateTime",
               default_select=(
                   "id", "createdDateTime", "lastModifiedDateTime", "receivedDateTime", "sentDateTime", "subject",
                   "from", "sender", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "conversationId",
                   "internetMessageId", "parentFolderId", "importance", "isRead", "isDraft", "hasAttachments",
                   "categories", "flag", "webLink",
               )),
    StreamSpec("calendar_events", "/users/{parent}/events", ("user_id", "id"),
               ("Calendars.Read", "Calendars.ReadWrite"), "outlook", parent="users",
               parent_key="user_id", max_page_size=1000, date_column="createdDateTime",
               default_select=(
                   "id", "createdDateTime", "lastModifiedDateTime", "subject", "start", "end", "isAllDay",
                   "showAs", "type", "seriesMasterId", "organizer", "attendees", "location", "isCancelled",
                   "isOnlineMeeting", "sensitivity", "importance", "categories", "webLink", "iCalUId",
               )),
    StreamSpec("contacts", "/users/{parent}/contacts", ("user_id", "id"),
               ("Contacts.Read", "Contacts.ReadWrite"), "outlook", parent="users", parent_key="user_id",
               max_page_size=1000),
    StreamSpec("drives", "/users/{parent}/drives", ("user_id", "id"), ("Files.Read.All", "Sites.Read.All"), "files",
               parent="users", parent_key="user_id", max_page_size=None),
    StreamSpec("drive_items", "/drives/{parent}/root/delta", ("drive_id", "id"), ("Files.Read.All", "Sites.Read.All"),
               "files", parent="drives", parent_key="drive_id", max_page_size=999, ends_with_delta_link=True,
               delta_path="/drives/{parent}/root/delta"),
    StreamSpec("audit_logs_directory", "/auditLogs/directoryAudits", ("id",), ("AuditLog.Read.All",), "reports",
               date_column="activityDateTime"),
    StreamSpec("audit_logs_signins", "/auditLogs/signIns", ("id",), ("AuditLog.Read.All",), "reports",
               max_page_size=999, date_column="createdDateTime"),
    StreamSpec("conditional_access_policies", "/identity/conditionalAccess/policies", ("id",), ("Policy.Read.All",),
               "policy", max_page_size=None),
    StreamSpec("directory_roles", "/directoryRoles", ("id",), ("RoleManagement.Read.Directory", "Directory.Read.All"),
               _DIR, max_page_size=None, delta_path="/directoryRoles/delta"),
    StreamSpec("directory_role_templates", "/directoryRoleTemplates", ("id",),
               ("RoleManagement.Read.Directory", "Directory.Read.All"), _DIR, max_page_size=None),
    StreamSpec("directory_role_member", "/directoryRoles/{parent}/members", ("role_id", "id"),
               ("RoleManagement.Read.Directory", "Directory.Read.All"), _DIR, parent="directory_roles",
               parent_key="role_id", max_page_size=None),
)

CATALOG: dict[str, StreamSpec] = {spec.name: spec for spec in STREAMS}


def get_stream(name: str) -> StreamSpec:
    """The spec for `name`, or a KeyError listing the valid names (a typo in SYNC_STREAMS should be obvious)."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown stream {name!r}; valid streams: {', '.join(CATALOG)}") from None


def parent_chain(name: str) -> list[StreamSpec]:
    """`name`'s ancestors, root first (drive_items -> [users, drives])."""
    chain: list[StreamSpec] = []
    spec = get_stream(name)
    while spec.parent is not None:
        spec = get_stream(spec.parent)
        chain.insert(0, spec)
    return chain
