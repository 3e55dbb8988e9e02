"""Mutations as an overlay on the generated base, a tenant-wide change log, and the journal that persists both.

The base tenant is never stored: a mutation only records its *effects* (put a record, hide an id, unhide it,
log a change). Effects are plain JSON, so the journal (one JSON line per applied operation) replays them
byte-for-byte on restart and delta tokens (which are change sequence numbers) stay valid across restarts.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.tenant.model import Change, ChangeKind, Record

FamilyKey = tuple[str, str]
LogKey = tuple[str, ...]
JOURNAL_FORMAT = 1


@dataclass(slots=True)
class Store:
    """The overlay of one family of records (e.g. every message of one mailbox)."""

    records: dict[str, Record] = field(default_factory=dict)  # current state of every created or updated record
    created: list[str] = field(default_factory=list)  # created ids, in creation order
    created_set: set[str] = field(default_factory=set)
    hidden: dict[str, bool] = field(default_factory=dict)  # id -> True when soft-deleted (restorable)
    version: int = 0


class ChangeLog:
    """Changes indexed by the collection keys they belong to; `seq` grows strictly across the tenant."""

    def __init__(self) -> None:
        self.seq = 0
        self._by_key: dict[LogKey, list[Change]] = {}
        self._seqs: dict[LogKey, list[int]] = {}

    def add(self, keys: Iterable[LogKey], change: Change) -> None:
        if change.seq <= self.seq:
            raise ValueError(f"change seq {change.seq} is not after the current seq {self.seq}")
        self.seq = change.seq
        for key in dict.fromkeys(keys):
            self._by_key.setdefault(key, []).append(change)
            self._seqs.setdefault(key, []).append(change.seq)

    def since(self, key: LogKey, seq: int) -> list[Change]:
        changes = self._by_key.get(key)
        if not changes:
            return []
        return changes[bisect.bisect_right(self._seqs[key], seq) :]


class Overlay:
    """Every store plus the change log; `apply_effects` is the only writer (used live and on replay)."""

    def __init__(self) -> None:
        self.stores: dict[FamilyKey, Store] = {}
        self.log = ChangeLog()
        self._empty = Store()

    def store(self, family: FamilyKey) -> Store:
        """The family's store; an unmutated family shares one empty store (no allocation per parent)."""
        return self.stores.get(family, self._empty)

    def _writable(self, family: FamilyKey) -> Store:
        found = self.stores.get(family)
        if found is None:
            found = self.stores[family] = Store()
        return found

    def apply_effects(self, effects: list[dict[str, Any]]) -> None:
        for effect in effects:
            kind = effect["e"]
            if kind == "change":
                change = Change(
                    seq=effect["seq"], kind=effect["kind"], id=effect["id"], record=effect.get("rec"),
                    added=tuple(effect.get("added", ())), removed=tuple(effect.get("removed", ())),
                )
                self.log.add((tuple(k) for k in effect["keys"]), change)
                continue
            store = self._writable((effect["fam"][0], effect["fam"][1]))
            item_id = effect["id"]
            if kind == "put":
                store.records[item_id] = effect["rec"]
                if effect.get("new") and item_id not in store.created_set:
                    store.created.append(item_id)
                    store.created_set.add(item_id)
            elif kind == "hide":
                store.hidden[item_id] = bool(effect.get("soft"))
            elif kind == "unhide":
                store.hidden.pop(item_id, None)
            else:
                raise ValueError(f"unknown overlay effect {kind!r}")
            store.version += 1


def change_effect(keys: Iterable[LogKey], seq: int, kind: ChangeKind, item_id: str, record: Record | None = None,
                  added: Iterable[Record] = (), removed: Iterable[Record] = ()) -> dict[str, Any]:
    effect: dict[str, Any] = {"e": "change", "keys": [list(k) for k in dict.fromkeys(keys)], "seq": seq,
                              "kind": kind, "id": item_id}
    if record is not None:
        effect["rec"] = record
    if added:
        effect["added"] = list(added)
    if removed:
        effect["removed"] = list(removed)
    return effect


class Journal:
    """Append-only JSON lines: a header naming the tenant, then one line of effects per applied operation."""

    FILE = "tenant-journal.jsonl"

    def __init__(self, state_dir: Path, header: dict[str, Any]) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / self.FILE
        self.header = {"format": JOURNAL_FORMAT, **header}
        if not self.path.exists() or self.path.stat().st_size == 0:
            with self.path.open("w", encoding="utf-8") as fh:
                fh.write(json.dumps(self.header, ensure_ascii=False, sort_keys=True) + "\n")

    def entries(self) -> list[list[dict[str, Any]]]:
        """Effects of every journaled operation; refuses a journal written for another tenant."""
        with self.path.open(encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        found = json.loads(lines[0])
        if found != self.header:
            raise ValueError(
                f"state directory {self.path.parent} holds a tenant built from {found}, not {self.header}; "
                "use another --state-dir or delete it to start over"
            )
        entries = []
        for n, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line)["effects"])
            except (json.JSONDecodeError, KeyError):
                if n >= len(lines) - 1:  # a torn last line from a crash mid-write: ignore it
                    break
                raise ValueError(f"{self.path}:{n} is not a journal entry; the state directory is corrupt") from None
        return entries

    def append(self, op: dict[str, Any], effects: list[dict[str, Any]]) -> None:
        line = json.dumps({"op": op, "effects": effects}, ensure_ascii=False, separators=(",", ":"))
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
