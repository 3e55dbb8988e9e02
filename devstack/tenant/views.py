"""A `Collection` = a generated base source seen through its family's overlay.

Visible order: base records in index order (updated ones merged in place, deleted ones skipped), then created
records in creation order. With no mutations, `count` is the source's O(1) count and `page` generates exactly the
requested records; each deletion adds O(1) work per page (the hidden positions are kept sorted and cached).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from devstack.tenant.model import Change, CollectionKind, Record
from devstack.tenant.overlay import FamilyKey, LogKey, Overlay, Store
from devstack.tenant.rng import parse_iso


class Source(Protocol):
    def count(self) -> int: ...

    def make(self, index: int) -> Record: ...

    def index_of(self, item_id: str) -> int | None: ...


@dataclass(frozen=True, slots=True)
class IndexSource:
    """A source defined by three functions (the generators and the id decoders of `layout`/`ids`)."""

    size: int
    maker: Callable[[int], Record]
    locate: Callable[[str], int | None]

    def count(self) -> int:
        return self.size

    def make(self, index: int) -> Record:
        return self.maker(index)

    def index_of(self, item_id: str) -> int | None:
        i = self.locate(item_id)
        return i if i is not None and 0 <= i < self.size else None


class ListSource:
    """A small source held as records (a user's chats, a mailbox's folders)."""

    def __init__(self, records: list[Record]) -> None:
        self._records = records
        self._index = {r["id"]: i for i, r in enumerate(records)}

    def count(self) -> int:
        return len(self._records)

    def make(self, index: int) -> Record:
        return copy.deepcopy(self._records[index])

    def index_of(self, item_id: str) -> int | None:
        return self._index.get(item_id)


EMPTY = ListSource([])
# kind -> timestamp property its generated records ascend in (monotonic in the index)
SORTED_BY: dict[str, str] = {"messages": "receivedDateTime", "folderMessages": "receivedDateTime",
                             "directoryAudits": "activityDateTime", "signIns": "createdDateTime",
                             "chatMessages": "createdDateTime"}


def _accept_all(record: Record) -> bool:
    return True


def _identity(record: Record) -> Record:
    return record


class View:
    kind: CollectionKind

    def __init__(self, kind: CollectionKind, source: Source, overlay: Overlay, family: FamilyKey, key: LogKey,
                 accept: Callable[[Record], bool] = _accept_all,
                 render: Callable[[Record], Record] = _identity,
                 source_id: Callable[[str], str | None] | None = None) -> None:
        self.kind = kind
        self._source = source
        self._overlay = overlay
        self._family = family
        self._log = overlay.log
        self._key = key
        self._accept = accept
        self._render = render
        self._source_id = source_id  # the rendered id -> the id the source and overlay know (team members)
        self._cache_store: Store | None = None
        self._cache_version = -1
        self._hidden_positions: list[int] = []
        self._created: list[str] = []

    @property
    def _store(self) -> Store:
        """Looked up on every use: a family gets its own store only when first mutated."""
        return self._overlay.store(self._family)

    def _refresh(self) -> None:
        store = self._store
        if store is self._cache_store and store.version == self._cache_version:
            return
        positions = []
        for item_id in store.hidden:
            if item_id not in store.created_set:
                i = self._source.index_of(item_id)
                if i is not None:
                    positions.append(i)
        self._hidden_positions = sorted(positions)
        self._created = [i for i in store.created if i not in store.hidden and self._accept(store.records[i])]
        self._cache_version = store.version
        self._cache_store = store

    def count(self) -> int:
        self._refresh()
        return self._source.count() - len(self._hidden_positions) + len(self._created)

    def _base(self, index: int) -> Record:
        record = self._source.make(index)
        if self._store.records:
            stored = self._store.records.get(record["id"])
            if stored is not None:
                record = copy.deepcopy(stored)
        return self._render(record)

    def iter_from(self, offset: int = 0) -> Iterator[Record]:
        self._refresh()
        hidden = self._hidden_positions
        base_total = self._source.count()
        visible_base = base_total - len(hidden)
        if offset < visible_base:
            b = offset
            k = 0
            while k < len(hidden) and hidden[k] <= b:  # map the visible offset onto a base index
                b += 1
                k += 1
            while b < base_total:
                if k < len(hidden) and hidden[k] == b:
                    k += 1
                else:
                    yield self._base(b)
                b += 1
            offset = visible_base
        records = self._store.records
        for item_id in self._created[offset - visible_base :]:
            yield self._render(copy.deepcopy(records[item_id]))

    def page(self, offset: int, limit: int) -> list[Record]:
        if offset < 0 or limit < 0:
            raise ValueError(f"page(offset={offset}, limit={limit}): both must be >= 0")
        out: list[Record] = []
        if limit == 0:
            return out
        for record in self.iter_from(offset):
            out.append(record)
            if len(out) == limit:
                break
        return out

    def get(self, item_id: str) -> Record | None:
        if self._source_id is not None:
            found = self._source_id(item_id)
            if found is None:
                return None
            item_id = found
        store = self._store
        if item_id in store.hidden:
            return None
        if item_id in store.created_set:
            record = store.records[item_id]
            return self._render(copy.deepcopy(record)) if self._accept(record) else None
        i = self._source.index_of(item_id)
        if i is None:
            return None
        return self._base(i)

    def contains(self, item_id: str) -> bool:
        """Whether `get` would find the id, without generating the record (parent checks)."""
        if self._source_id is not None:
            found = self._source_id(item_id)
            if found is None:
                return False
            item_id = found
        store = self._store
        if item_id in store.hidden:
            return False
        if item_id in store.created_set:
            return self._accept(store.records[item_id])
        return self._source.index_of(item_id) is not None

    @property
    def sorted_by(self) -> str | None:
        """The timestamp property the generated records are in ascending order of (None: no such order)."""
        return SORTED_BY.get(self.kind)

    def ordered_count(self) -> int:
        """How many leading records are in `sorted_by` order: the generated ones; created records follow."""
        self._refresh()
        return self._source.count() - len(self._hidden_positions)

    def lower_bound(self, moment: datetime | str) -> int:
        """First offset whose `sorted_by` time is >= moment, found with O(log n) generated records.

        Lets a date filter (`receivedDateTime ge ...`) start paging in the right place instead of scanning a huge
        mailbox; records from `ordered_count()` on (created ones) are not ordered and must still be scanned.
        """
        prop = self.sorted_by
        if prop is None:
            raise ValueError(f"{self.kind} records have no time order; scan them with iter_from")
        target = parse_iso(moment) if isinstance(moment, str) else moment
        lo, hi = 0, self.ordered_count()
        while lo < hi:
            mid = (lo + hi) // 2
            if parse_iso(self.page(mid, 1)[0][prop]) < target:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def changes_since(self, seq: int) -> list[Change]:
        """Copies: callers may reshape what they get without touching the log."""
        return [c if c.record is None else dataclasses.replace(c, record=copy.deepcopy(c.record))
                for c in self._log.since(self._key, seq)]

