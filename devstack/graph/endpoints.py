"""The declarative table of Graph v1.0 endpoints the emulator serves, and pure URL-path routing onto it.

Each row says how Graph treats that endpoint: workload family (error codes, throttling), the tenant collection
behind it, paging (default/max `$top`, `$skiptoken` or `$skip`), delta support, `$orderby` support, the
`@odata.context` template and the directory resource-unit cost (TL-2026 cost table).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

Family = Literal["directory", "outlook", "teams", "drive", "reports", "ca"]
PageStyle = Literal["skiptoken", "skip", "none"]
DeltaStyle = Literal["directory", "outlook", "drive"]

USER_DEFAULT_SELECT = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
    "preferredLanguage", "surname", "userPrincipalName", "id",
)
TEAM_LIST_SELECT = ("id", "displayName", "description")


@dataclass(frozen=True, slots=True)
class Paging:
    default: int | None  # None: one page holds everything (no paging)
    maximum: int | None
    style: PageStyle


NO_PAGING = Paging(None, None, "none")
DIRECTORY = Paging(100, 999, "skiptoken")
OUTLOOK = Paging(10, 1000, "skip")


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    pattern: tuple[str, ...]  # literal segments (compared case-insensitively) and "{}" for keys
    family: Family
    kind: str | None  # tenant CollectionKind
    entity: str  # OData entity type name (microsoft.graph.<entity>)
    context: str  # @odata.context fragment; {0}, {1} are the keys as written in the URL
    paging: Paging = NO_PAGING
    delta: DeltaStyle | None = None
    single: bool = False
    cost: int = 1  # directory resource units before modifiers
    orderby: frozenset[str] = frozenset()
    default_select: tuple[str, ...] | None = None
    count_needs_eventual: bool = False  # directory objects: $count needs ConsistencyLevel: eventual
    select_allowed: bool = True
    user_key: int | None = None  # index of the key that names a user (mailbox / OneDrive / chats owner)
    teams_resource: str | None = None  # Teams throttling resource class
    filter_props: frozenset[str] | None = None  # when set, only these properties may appear in $filter
    filter_ops: frozenset[str] | None = None
    window_required: bool = False  # calendarView: startDateTime + endDateTime
    filter_needs_orderby: bool = False  # chat messages: a $filter without a matching $orderby is ignored
    newest_first: bool = False  # default order is most recent first (sign-ins)
    orderby_in_filter: bool = False  # Outlook messages: $orderby properties must lead the $filter (InefficientFilter)
    methods: tuple[str, ...] = field(default=("GET",))


_E = Endpoint
ENDPOINTS: tuple[Endpoint, ...] = (
    # --- directory ---
    _E("users", ("users",), "directory", "users", "user", "users", DIRECTORY, cost=2,
       orderby=frozenset({"displayName", "userPrincipalName", "createdDateTime"}), default_select=USER_DEFAULT_SELECT,
       count_needs_eventual=True),
    _E("users_delta", ("users", "delta"), "directory", "users", "user", "users", DIRECTORY, delta="directory", cost=2,
       default_select=USER_DEFAULT_SELECT, filter_props=frozenset({"id"}), filter_ops=frozenset({"eq", "or"})),
    _E("user", ("users", "{}"), "directory", "users", "user", "users/$entity", single=True, cost=2,
       default_select=USER_DEFAULT_SELECT),
    _E("groups", ("groups",), "directory", "groups", "group", "groups", DIRECTORY,
       orderby=frozenset({"displayName", "createdDateTime"}), count_needs_eventual=True),
    _E("groups_delta", ("groups", "delta"), "directory", "groups", "group", "groups", DIRECTORY, delta="directory",
       filter_props=frozenset({"id"}), filter_ops=frozenset({"eq", "or"})),
    _E("group_members", ("groups", "{}", "members"), "directory", "groupMembers", "directoryObject",
       "directoryObjects", DIRECTORY, cost=3, count_needs_eventual=True),
    _E("group_owners", ("groups", "{}", "owners"), "directory", "groupOwners", "directoryObject", "directoryObjects",
       DIRECTORY, count_needs_eventual=True),
    _E("group_transitive_members", ("groups", "{}", "transitiveMembers"), "directory", "groupMembers",
       "directoryObject", "directoryObjects", DIRECTORY, cost=5, count_needs_eventual=True),
    _E("group_drives", ("groups", "{}", "drives"), "drive", "groupDrives", "drive", "groups('{0}')/drives",
       Paging(200, 1000, "skiptoken")),
    _E("applications", ("applications",), "directory", "applications", "application", "applications", DIRECTORY,
       cost=2, orderby=frozenset({"displayName", "createdDateTime"}), count_needs_eventual=True),
    _E("applications_delta", ("applications", "delta"), "directory", "applications", "application", "applications",
       DIRECTORY, delta="directory", cost=2, filter_props=frozenset({"id"}), filter_ops=frozenset({"eq", "or"})),
    _E("service_principals", ("servicePrincipals",), "directory", "servicePrincipals", "servicePrincipal",
       "servicePrincipals", DIRECTORY, orderby=frozenset({"displayName", "createdDateTime"}),
       count_needs_eventual=True),
    _E("service_principals_delta", ("servicePrincipals", "delta"), "directory", "servicePrincipals",
       "servicePrincipal", "servicePrincipals", DIRECTORY, delta="directory", filter_props=frozenset({"id"}),
       filter_ops=frozenset({"eq", "or"})),
    _E("directory_roles", ("directoryRoles",), "directory", "directoryRoles", "directoryRole", "directoryRoles"),
    _E("directory_roles_delta", ("directoryRoles", "delta"), "directory", "directoryRoles", "directoryRole",
       "directoryRoles", DIRECTORY, delta="directory", filter_props=frozenset({"id"}),
       filter_ops=frozenset({"eq", "or"})),
    _E("directory_role_members", ("directoryRoles", "{}", "members"), "directory", "directoryRoleMembers",
       "directoryObject", "directoryObjects"),
    _E("directory_role_templates", ("directoryRoleTemplates",), "directory", "directoryRoleTemplates",
       "directoryRoleTemplate", "directoryRoleTemplates"),
    # --- Teams ---
    _E("teams", ("teams",), "teams", "groups", "team", "teams", DIRECTORY, default_select=TEAM_LIST_SELECT,
       teams_resource="teams"),
    _E("channels", ("teams", "{}", "channels"), "teams", "channels", "channel", "teams('{0}')/channels",
       teams_resource="channels"),
    _E("team_members", ("teams", "{}", "members"), "teams", "teamMembers", "conversationMember",
       "teams('{0}')/members", DIRECTORY, teams_resource="team_members"),
    _E("chats_all", ("chats",), "teams", "chats", "chat", "chats", Paging(50, 50, "skiptoken"),
       teams_resource="user_chats"),
    _E("user_chats", ("users", "{}", "chats"), "teams", "chats", "chat", "users('{0}')/chats",
       Paging(50, 50, "skiptoken"), user_key=0, teams_resource="user_chats",
       orderby=frozenset({"lastMessagePreview/createdDateTime"})),
    _E("chat_messages", ("chats", "{}", "messages"), "teams", "chatMessages", "chatMessage",
       "chats('{0}')/messages", Paging(50, 50, "skiptoken"), teams_resource="chat_messages",
       orderby=frozenset({"lastModifiedDateTime", "createdDateTime"}), filter_needs_orderby=True),
    _E("chat_members", ("chats", "{}", "members"), "teams", "chatMembers", "conversationMember",
       "chats('{0}')/members", teams_resource="chat_members"),
    _E("user_all_chat_messages", ("users", "{}", "chats", "getAllMessages"), "teams", "chatMessages",
       "chatMessage", "Collection(chatMessage)", Paging(50, 50, "skiptoken"), user_key=0,
       teams_resource="all_messages"),
    _E("user_all_chat_messages_delta", ("users", "{}", "chats", "getAllMessages", "delta"), "teams", "chatMessages",
       "chatMessage", "Collection(chatMessage)", Paging(50, 50, "skiptoken"), delta="directory", user_key=0,
       teams_resource="all_messages", filter_props=frozenset({"lastModifiedDateTime"}),
       filter_ops=frozenset({"gt", "ge"})),
    # --- Outlook ---
    _E("messages", ("users", "{}", "messages"), "outlook", "messages", "message", "users('{0}')/messages", OUTLOOK,
       user_key=0, orderby=frozenset({"receivedDateTime", "sentDateTime", "createdDateTime",
                                      "lastModifiedDateTime", "subject"}), orderby_in_filter=True),
    _E("mail_folders", ("users", "{}", "mailFolders"), "outlook", "mailFolders", "mailFolder",
       "users('{0}')/mailFolders", OUTLOOK, user_key=0, orderby=frozenset({"displayName"})),
    # mailFolders/delta: the whole hierarchy, flat (nested folders too), unlike the top-level-only list
    _E("mail_folders_delta", ("users", "{}", "mailFolders", "delta"), "outlook", "mailFolders", "mailFolder",
       "Collection(mailFolder)", OUTLOOK, delta="outlook", user_key=0, filter_props=frozenset()),
    _E("mail_folder", ("users", "{}", "mailFolders", "{}"), "outlook", "mailFolders", "mailFolder",
       "users('{0}')/mailFolders/$entity", single=True, user_key=0),
    _E("mail_child_folders", ("users", "{}", "mailFolders", "{}", "childFolders"), "outlook", "mailFolders",
       "mailFolder", "users('{0}')/mailFolders('{1}')/childFolders", OUTLOOK, user_key=0,
       orderby=frozenset({"displayName"})),
    _E("folder_messages", ("users", "{}", "mailFolders", "{}", "messages"), "outlook", "folderMessages", "message",
       "users('{0}')/mailFolders('{1}')/messages", OUTLOOK, user_key=0,
       orderby=frozenset({"receivedDateTime", "sentDateTime", "createdDateTime", "lastModifiedDateTime",
                          "subject"}), orderby_in_filter=True),
    _E("folder_messages_delta", ("users", "{}", "mailFolders", "{}", "messages", "delta"), "outlook",
       "folderMessages", "message", "Collection(message)", OUTLOOK, delta="outlook", user_key=0,
       orderby=frozenset({"receivedDateTime"}), filter_props=frozenset({"receivedDateTime"}),
       filter_ops=frozenset({"ge", "gt"})),
    _E("events", ("users", "{}", "events"), "outlook", "events", "event", "users('{0}')/events", OUTLOOK,
       user_key=0, orderby=frozenset({"start/dateTime", "end/dateTime", "createdDateTime", "lastModifiedDateTime",
                                      "subject"})),
    _E("calendar_view", ("users", "{}", "calendarView"), "outlook", "events", "event",
       "users('{0}')/calendarView", OUTLOOK, user_key=0, window_required=True,
       orderby=frozenset({"start/dateTime", "end/dateTime", "createdDateTime", "lastModifiedDateTime",
                          "subject"})),
    _E("calendar_view_delta", ("users", "{}", "calendarView", "delta"), "outlook", "events", "event",
       "Collection(event)", OUTLOOK, delta="outlook", user_key=0, window_required=True, select_allowed=False,
       filter_props=frozenset()),
    _E("contacts", ("users", "{}", "contacts"), "outlook", "contacts", "contact", "users('{0}')/contacts", OUTLOOK,
       user_key=0, orderby=frozenset({"displayName", "createdDateTime", "lastModifiedDateTime"})),
    _E("contact_folders", ("users", "{}", "contactFolders"), "outlook", "contactFolders", "contactFolder",
       "users('{0}')/contactFolders", OUTLOOK, user_key=0),
    _E("contact_folders_delta", ("users", "{}", "contactFolders", "delta"), "outlook", "contactFolders",
       "contactFolder", "Collection(contactFolder)", OUTLOOK, delta="outlook", user_key=0, filter_props=frozenset()),
    _E("contact_child_folders", ("users", "{}", "contactFolders", "{}", "childFolders"), "outlook",
       "contactFolders", "contactFolder", "users('{0}')/contactFolders('{1}')/childFolders", OUTLOOK, user_key=0),
    _E("folder_contacts", ("users", "{}", "contactFolders", "{}", "contacts"), "outlook", "folderContacts",
       "contact", "users('{0}')/contactFolders('{1}')/contacts", OUTLOOK, user_key=0,
       orderby=frozenset({"displayName", "createdDateTime", "lastModifiedDateTime"})),
    _E("folder_contacts_delta", ("users", "{}", "contactFolders", "{}", "contacts", "delta"), "outlook",
       "folderContacts", "contact", "Collection(contact)", OUTLOOK, delta="outlook", user_key=0,
       filter_props=frozenset()),
    # --- OneDrive ---
    _E("user_drives", ("users", "{}", "drives"), "drive", "drives", "drive", "users('{0}')/drives",
       Paging(200, 1000, "skiptoken"), user_key=0),
    _E("user_drive", ("users", "{}", "drive"), "drive", "drives", "drive", "users('{0}')/drive/$entity",
       single=True, user_key=0),
    _E("user_drive_delta", ("users", "{}", "drive", "root", "delta"), "drive", "driveItems", "driveItem",
       "Collection(driveItem)", Paging(200, 1000, "skiptoken"), delta="drive", user_key=0),
    _E("drive_delta", ("drives", "{}", "root", "delta"), "drive", "driveItems", "driveItem", "Collection(driveItem)",
       Paging(200, 1000, "skiptoken"), delta="drive"),
    _E("drive_children", ("drives", "{}", "items", "{}", "children"), "drive", "driveItems", "driveItem",
       "drives('{0}')/items('{1}')/children", Paging(200, 1000, "skiptoken"),
       orderby=frozenset({"name", "lastModifiedDateTime", "size"})),
    _E("drive_root_children", ("drives", "{}", "root", "children"), "drive", "driveItems", "driveItem",
       "drives('{0}')/root/children", Paging(200, 1000, "skiptoken"),
       orderby=frozenset({"name", "lastModifiedDateTime", "size"})),
    # --- identity reports and policies ---
    _E("directory_audits", ("auditLogs", "directoryAudits"), "reports", "directoryAudits", "directoryAudit",
       "auditLogs/directoryAudits", Paging(1000, 1000, "skiptoken"), orderby=frozenset({"activityDateTime"})),
    _E("sign_ins", ("auditLogs", "signIns"), "reports", "signIns", "signIn", "auditLogs/signIns",
       Paging(1000, 1000, "skiptoken"), orderby=frozenset({"createdDateTime"}), newest_first=True),
    _E("ca_policies", ("identity", "conditionalAccess", "policies"), "ca", "conditionalAccessPolicies",
       "conditionalAccessPolicy", "identity/conditionalAccess/policies",
       orderby=frozenset({"displayName", "createdDateTime", "modifiedDateTime"})),
)

BY_NAME: dict[str, Endpoint] = {e.name: e for e in ENDPOINTS}

_KEY_SEGMENT = re.compile(r"^(?P<name>[^(]+)\((?P<key>.*)\)$")
_FUNCTIONS = {"delta": "delta", "getallmessages": "getAllMessages"}


class RouteError(ValueError):
    """The path names no endpoint the emulator (or Graph, for app-only callers) serves."""


def split_path(raw_path: str) -> list[str]:
    """Segments of a raw (still percent-encoded) path below /v1.0, with `x('key')` expanded to `x`, `key`.

    Splitting before decoding keeps `%2F` inside Outlook ids from turning into a separator.
    """
    out: list[str] = []
    for raw in raw_path.split("/"):
        if not raw:
            continue
        seg = unquote(raw)
        # Functions may be written `delta`, `delta()` or fully qualified `microsoft.graph.delta()` (the SDKs).
        bare = seg.lower().removesuffix("()").removeprefix("microsoft.graph.")
        if bare in _FUNCTIONS:
            out.append(_FUNCTIONS[bare])
            continue
        m = _KEY_SEGMENT.match(seg)
        if m and m.group("key") not in ("",):
            key = m.group("key")
            if len(key) >= 2 and key[0] == key[-1] == "'":
                key = key[1:-1].replace("''", "'")
            out.append(m.group("name"))
            out.append(key)
        else:
            out.append(seg)
    return out


_FOLDER_SETS = frozenset({"mailfolders", "contactfolders"})


def fold_child_folders(segments: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """`mailFolders/{a}/childFolders/{b}/...` (the navigation form the SDKs generate, any depth) addresses folder b:
    the segments with each chain folded to `mailFolders/{b}`, and the (parent, child) steps the caller must check."""
    out = list(segments)
    steps: list[tuple[str, str]] = []
    i = 0
    while i < len(out):
        if out[i].lower() in _FOLDER_SETS and i + 3 < len(out) and out[i + 2].lower() == "childfolders":
            steps.append((out[i + 1], out[i + 3]))
            del out[i + 1:i + 3]  # mailFolders, a, childFolders, b -> mailFolders, b (and look again from there)
            continue
        i += 1
    return out, steps


def route(raw_path: str) -> tuple[Endpoint, tuple[str, ...], list[tuple[str, str]]]:
    """The endpoint, its keys and the child-folder steps of a raw path (RouteError when nothing fits)."""
    ep, keys, steps = _route(raw_path)
    return ep, keys, list(steps)


@functools.lru_cache(maxsize=4096)
def _route(raw_path: str) -> tuple[Endpoint, tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Routing is pure in the path, and a path is routed several times: each page of a folder, and a `$batch`
    item both for its mailbox gate and for its response."""
    segments, steps = fold_child_folders(split_path(raw_path))
    ep, keys = match(segments)
    return ep, keys, tuple(steps)


def match(segments: list[str]) -> tuple[Endpoint, tuple[str, ...]]:
    """The endpoint whose pattern fits best (most literal segments) and the keys it captured."""
    best: tuple[int, Endpoint, tuple[str, ...]] | None = None
    for ep in ENDPOINTS:
        if len(ep.pattern) != len(segments):
            continue
        keys: list[str] = []
        literals = 0
        for pat, seg in zip(ep.pattern, segments, strict=True):
            if pat == "{}":
                keys.append(seg)
            elif pat.lower() == seg.lower():
                literals += 1
            else:
                break
        else:
            if best is None or literals > best[0]:
                best = (literals, ep, tuple(keys))
    if best is None:
        raise RouteError("/".join(segments))
    return best[1], best[2]
