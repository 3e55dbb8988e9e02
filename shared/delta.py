"""Pure delta-query rules: which streams read incrementally and how, the query a checkpoint belongs to, and how
Graph's delta payloads become change records. No I/O, so every rule is unit-testable without a server.

Change records: every record of an incremental stream carries `_change`: `"upsert"` (created or updated; in a
`changes` partition Graph may send only the changed properties, so consumers merge by id) or `"deleted"` (id,
parent key and `_removed_reason`: Graph's `@removed.reason`, or `deleted` for the drive `deleted` facet).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

Mode = Literal["delta", "folders", "members", "window"]

CHANGE = "_change"
REMOVED_REASON = "_removed_reason"


@dataclass(frozen=True, slots=True)
class IncrementalPlan:
    """How one stream reads incrementally.

    - `delta`: one delta query per partition (`path` is the delta path, `{parent}` filled with the parent id).
    - `folders`: a per-user partition (a mailbox) keeps one delta cursor per folder (`path` takes `{parent}` and
      `{folder}`; Outlook offers message and contact delta per folder only) plus one for the folder hierarchy
      (`folders_path`, a delta of the whole tree, nested folders included): see `shared.mailbox_plan`.
    - `members`: group membership through `groups/delta` filtered to one group (`members@delta`).
    - `window`: append-only logs read by timestamp with a stored watermark and an overlap for late records.
    """

    mode: Mode
    path: str = ""
    folders_path: str = ""
    default_folder_path: str = ""
    """When set, `folders_path` reports only the child folders of a default folder that must be read too: Graph's
    contact folder listings omit the default Contacts folder, whose id is the children's `parentFolderId`, or (with
    no child folders) the `parentFolderId` of an item of this path (`/contacts` = the default folder's items)."""
    outlook: bool = False
    """Outlook delta pages are sized with `Prefer: odata.maxpagesize`, not `$top`."""
    select: bool = True
    """calendarView delta takes no `$select`."""
    calendar_window: bool = False
    top: bool = False
    """Drive delta honours `$top`; directory delta does not."""


PLANS: dict[str, IncrementalPlan] = {
    "users": IncrementalPlan("delta", "/users/delta"),
    "groups": IncrementalPlan("delta", "/groups/delta"),
    "applications": IncrementalPlan("delta", "/applications/delta"),
    "service_principals": IncrementalPlan("delta", "/servicePrincipals/delta"),
    "directory_roles": IncrementalPlan("delta", "/directoryRoles/delta"),
    "group_member": IncrementalPlan("members", "/groups/delta"),
    "mail_messages": IncrementalPlan("folders", "/users/{parent}/mailFolders/{folder}/messages/delta",
                                     folders_path="/users/{parent}/mailFolders/delta", outlook=True),
    "contacts": IncrementalPlan("folders", "/users/{parent}/contactFolders/{folder}/contacts/delta",
                                folders_path="/users/{parent}/contactFolders/delta",
                                default_folder_path="/users/{parent}/contacts", outlook=True),
    "calendar_events": IncrementalPlan("delta", "/users/{parent}/calendarView/delta", outlook=True, select=False,
                                       calendar_window=True),
    "drive_items": IncrementalPlan("delta", "/drives/{parent}/root/delta", top=True),
    "audit_logs_directory": IncrementalPlan("window"),
    "audit_logs_signins": IncrementalPlan("window"),
}
"""Streams absent here (teams, channels, chats, chat messages, drives, policies, role templates, role and group
owners) have no app-only delta per partition in Graph v1.0 and stay full copies (`kind: full`)."""


def plan_for(stream: str) -> IncrementalPlan | None:
    return PLANS.get(stream)


def default_folder_ids(folders: list[dict[str, Any]]) -> list[str]:
    """The folders the listed ones hang under that are not listed themselves: with Graph's `/contactFolders` this
    is the default Contacts folder (ids in listing order, each once)."""
    listed = {f.get("id") for f in folders}
    parents = [f.get("parentFolderId") for f in folders]
    return list(dict.fromkeys(p for p in parents if isinstance(p, str) and p and p not in listed))


def query_fingerprint(query: dict[str, Any]) -> str:
    """Stable digest of the query a checkpoint belongs to; a different digest means a fresh snapshot."""
    return hashlib.sha256(orjson.dumps(query, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def calendar_window(started_at: str, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The calendarView window: the configured one, else whole years around the run (last year to two years
    ahead), so the window (and with it the checkpoint's query) changes once a year rather than every run."""
    now = datetime.fromisoformat(started_at.replace("Z", "+00:00")).astimezone(UTC)
    low = start or datetime(now.year - 1, 1, 1, tzinfo=UTC)
    high = end or datetime(now.year + 2, 1, 1, tzinfo=UTC)
    if high <= low:
        raise ValueError(f"calendar_events date_window: end {high.isoformat()} must be after start "
                         f"{low.isoformat()}; fix SYNC_START_TIME/SYNC_END_TIME or the stream's date_window")
    return low, high


def removed_reason(record: dict[str, Any]) -> str | None:
    """Why Graph reports a record as gone, or None for an upsert: `@removed.reason` (directory, Outlook) or the
    drive `deleted` facet."""
    removed = record.get("@removed")
    if isinstance(removed, dict):
        reason = removed.get("reason")
        return reason if isinstance(reason, str) else "deleted"
    if removed is not None:
        return "deleted"
    deleted = record.get("deleted")
    if isinstance(deleted, dict):
        state = deleted.get("state")
        return state if isinstance(state, str) and state else "deleted"
    return None


def deletion(record_id: str, reason: str) -> dict[str, Any]:
    return {"id": record_id, CHANGE: "deleted", REMOVED_REASON: reason}


def change_record(record: dict[str, Any]) -> dict[str, Any] | None:
    """One delta item as a change record (annotations such as `@removed` and `members@delta` dropped), or None
    when it has no id."""
    rid = record.get("id")
    if not isinstance(rid, str):
        return None
    reason = removed_reason(record)
    if reason is not None:
        return deletion(rid, reason)
    # Called for every record of a delta read: one C-level scan of the key names instead of a Python test per
    # key, and a plain copy unless an `…@delta` annotation is there to drop.
    if "@delta" in "\0".join(record):
        out = {k: v for k, v in record.items() if not k.endswith("@delta") and k != "@removed"}
    else:
        out = dict(record)
        out.pop("@removed", None)  # `"@removed": null`
    if len(out) <= 2 and not set(out) - {"id", "@odata.type"}:
        return None  # only a relationship changed (e.g. `members@delta` on a group): nothing for this stream
    out[CHANGE] = "upsert"
    return out


def member_changes(group_entry: dict[str, Any]) -> list[dict[str, Any]]:
    """`members@delta` of one group entry as group_member change records."""
    items = group_entry.get("members@delta")
    out: list[dict[str, Any]] = []
    if not isinstance(items, list):
        return out
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        reason = removed_reason(item)
        if reason is not None:
            out.append(deletion(item["id"], reason))
        else:
            out.append({**{k: v for k, v in item.items() if k != "@removed"}, CHANGE: "upsert"})
    return out


def odata_quote(value: str) -> str:
    """An OData string literal ('' doubles a quote)."""
    return "'" + value.replace("'", "''") + "'"



def _utc_moment(value: Any) -> datetime | None:
    """`{"dateTime": ..., "timeZone": "UTC"}` as a UTC datetime; None when not in UTC (no tz database lookup)."""
    if not isinstance(value, dict) or str(value.get("timeZone", "UTC")).upper() not in ("UTC", "ETC/UTC"):
        return None
    text = value.get("dateTime")
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text[:26].rstrip("Z"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def outside_window(record: dict[str, Any], low: datetime, high: datetime) -> bool:
    """Calendar-view delta may report a changed event that now lies outside the window (event-delta.md): for the
    view it is gone. True only when both ends are known and the event does not overlap [low, high)."""
    start, end = _utc_moment(record.get("start")), _utc_moment(record.get("end"))
    if start is None or end is None:
        return False
    return end <= low or start >= high
