"""Pure delta-query rules: compact a change log into one entry per id (last wins) and render entries the way
each workload reports them (`@removed` for directory and Outlook, the `deleted` facet for drive items,
`members@delta` for group membership)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.tenant.model import Change, Record


@dataclass(slots=True)
class Entry:
    id: str
    seq: int
    state: str | None = None  # "upsert" | "soft_deleted" | "deleted" | None (membership change only)
    record: Record | None = None
    added: dict[str, Record] = field(default_factory=dict)
    removed: dict[str, Record] = field(default_factory=dict)


def compact(changes: Iterable[Change]) -> list[Entry]:
    """One entry per id in order of its latest change; membership adds/removes are netted per member."""
    entries: dict[str, Entry] = {}
    for change in changes:
        entry = entries.pop(change.id, None) or Entry(change.id, change.seq)
        entry.seq = change.seq
        if change.kind == "members":
            for ref in change.added:
                entry.removed.pop(str(ref.get("id")), None)
                entry.added[str(ref.get("id"))] = ref
            for ref in change.removed:
                entry.added.pop(str(ref.get("id")), None)
                entry.removed[str(ref.get("id"))] = ref
        else:
            entry.state = change.kind
            entry.record = change.record
        entries[change.id] = entry  # re-insert: dict order = order of latest change
    return list(entries.values())


def members_delta(added: Iterable[Mapping[str, Any]], removed: Iterable[Mapping[str, Any]] = ()) -> list[Record]:
    """`members@delta` items: directory object refs; removed ones carry `@removed: {reason: deleted}`."""
    out: list[Record] = [_ref(m) for m in added]
    out.extend({**_ref(m), "@removed": {"reason": "deleted"}} for m in removed)
    return out


def _ref(member: Mapping[str, Any]) -> Record:
    ref: Record = {}
    if "@odata.type" in member:
        ref["@odata.type"] = member["@odata.type"]
    ref["id"] = member.get("id")
    return ref


def render(
    entry: Entry,
    *,
    style: str,
    entity: str,
    project: Callable[[Record], Record],
    include_members: bool,
    keep: Callable[[Record], bool] | None = None,
) -> Record | None:
    """The delta payload for one compacted entry, or None when it must not be reported (filtered out, or a
    membership change the query does not track)."""
    if entry.state in ("soft_deleted", "deleted"):
        if style == "drive":
            gone: Record = {"@odata.type": "#microsoft.graph.driveItem", "id": entry.id,
                            "deleted": {"state": "deleted"}}
            if entry.record:
                for key in ("name", "parentReference", "file", "folder"):
                    if key in entry.record:
                        gone[key] = entry.record[key]
            return gone
        reason = "changed" if entry.state == "soft_deleted" else "deleted"
        removed: Record = {"id": entry.id, "@removed": {"reason": reason}}
        if style == "outlook":
            removed = {"@odata.type": f"#microsoft.graph.{entity}", **removed}
        return removed
    out: Record | None = None
    if entry.state == "upsert" and entry.record is not None:
        if keep is not None and not keep(entry.record):
            return None
        out = project(entry.record)
    if include_members and (entry.added or entry.removed):
        if out is None:
            out = {"id": entry.id}
        out["members@delta"] = members_delta(entry.added.values(), entry.removed.values())
    return out
