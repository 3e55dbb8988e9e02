"""Pure rules for reading a mailbox partition (mail folders, contact folders) in as few round trips as Graph allows.

Outlook offers message and contact delta per folder only, so a mailbox partition keeps one deltaLink per folder
plus one for the folder hierarchy (`mailFolders/delta`, `contactFolders/delta`: the whole tree, flat, nested
folders included, with `@removed` for deleted folders). An unchanged run then needs a single `$batch`: the
hierarchy check and every folder's stored deltaLink together. No I/O here: unit-tested without servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.graph.batch import MAX_ITEMS

HIERARCHY = "@folders"
"""Cursor key of the folder hierarchy's deltaLink (folder ids never start with `@`)."""
PROBE = "@default"
"""Batch key of the one-item read that finds the default folder's id when no child folder names it."""


BATCH_PAGE_FLOOR = 10
"""Outlook's default page size: no batch item asks for smaller pages."""


def batch_share(items: int) -> int:
    """How many items of one envelope share a page's worth of records (Graph takes at most 20 per envelope)."""
    return max(1, min(items, MAX_ITEMS))


def folder_cursors(cursors: Mapping[str, str]) -> dict[str, str]:
    """The per-folder deltaLinks of a checkpoint (the hierarchy's own link left out)."""
    return {k: v for k, v in cursors.items() if not k.startswith("@")}


@dataclass(frozen=True, slots=True)
class Hierarchy:
    folders: list[str]
    """Folders present (created, updated or moved), in Graph's order, each once."""
    removed: list[str]
    """Folders Graph reports `@removed`."""
    parents: list[str]
    """`parentFolderId`s that are not themselves listed, each once, in order."""


def read_hierarchy(records: Iterable[dict[str, Any]]) -> Hierarchy:
    """A hierarchy delta round (every page's records, in order) as the folders it reports. A folder reported both
    ways keeps its last state (delta may repeat an entity; the last occurrence wins)."""
    state: dict[str, bool] = {}
    parent_of: dict[str, str] = {}
    for record in records:
        fid = record.get("id")
        if not isinstance(fid, str) or not fid:
            continue
        state.pop(fid, None)
        state[fid] = "@removed" not in record
        parent = record.get("parentFolderId")
        if isinstance(parent, str) and parent:
            parent_of[fid] = parent
    present = [f for f, alive in state.items() if alive]
    parents = [p for f in present if (p := parent_of.get(f)) is not None and p not in state]
    return Hierarchy(present, [f for f, alive in state.items() if not alive], list(dict.fromkeys(parents)))


def default_from_items(items: Iterable[dict[str, Any]]) -> list[str]:
    """The default folder's id as its items name it (`parentFolderId` of a `/contacts` item)."""
    found = [p for r in items if isinstance(p := r.get("parentFolderId"), str) and p]
    return list(dict.fromkeys(found))


def snapshot_folders(hierarchy: Hierarchy, probe: list[str], *, default_folder: bool) -> list[str]:
    """The folders a first read covers. With `default_folder` (contacts), the listing omits the default folder:
    it is the parent the listed folders hang under, or (with no child folders) the probe's answer."""
    if not default_folder:
        return list(hierarchy.folders)
    defaults = hierarchy.parents or probe
    return list(dict.fromkeys([*defaults, *hierarchy.folders]))


@dataclass(frozen=True, slots=True)
class FolderDiff:
    added: list[str]
    removed: list[str]


def diff(known: Iterable[str], hierarchy: Hierarchy, probe: list[str], *, default_folder: bool) -> FolderDiff:
    """What a changes round of the hierarchy (plus the probe, sent only while no folder is known) means for the
    folders a checkpoint has cursors for: new ones need a first round, removed ones are gone. With
    `default_folder`, a new child folder also names its unlisted parent, the default folder."""
    known_set = set(known)
    defaults = [*hierarchy.parents, *probe] if default_folder else []
    added = [f for f in [*defaults, *hierarchy.folders] if f not in known_set]
    removed = [f for f in hierarchy.removed if f in known_set]
    return FolderDiff(list(dict.fromkeys(added)), removed)


@dataclass(frozen=True, slots=True)
class PageBody:
    records: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None


def page_body(body: Mapping[str, Any]) -> PageBody:
    """A delta page (from a batch item or a lone GET) as records and links."""
    value = body.get("value")
    records = [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []
    nxt, dl = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
    return PageBody(records, nxt if isinstance(nxt, str) else None, dl if isinstance(dl, str) else None)
