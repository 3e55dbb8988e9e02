"""Pure page computation over a tenant collection: offset cursors, filtered scans, sorting and counting.

Unfiltered pages are O(page) through `Collection.page`. Filtered pages scan lazily and stop after
`scan_budget` records, returning a short (possibly empty) page whose cursor resumes the scan: that is how Graph
itself can legally answer an empty page with a nextLink, and it bounds the work per request on huge collections.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devstack.graph import odata_filter
from devstack.tenant.model import Change, Collection, Record

Predicate = Callable[[Mapping[str, Any]], bool]
SCAN_BUDGET = 5_000  # ~1-2 s of on-demand generation: bounded latency per page on 500k-record logs


@dataclass(frozen=True, slots=True)
class PageResult:
    records: list[Record]
    next_start: int | None  # cursor for the next page (scan offset, sorted index or skip count); None = last page
    count: int | None = None


class ListCollection:
    """A materialised collection (derived views such as transitive members or a team's members)."""

    def __init__(self, kind: Any, records: Sequence[Record]) -> None:
        self.kind = kind
        self._records = list(records)

    def count(self) -> int:
        return len(self._records)

    def page(self, offset: int, limit: int) -> list[Record]:
        return self._records[offset:offset + limit]

    def iter_from(self, offset: int = 0) -> Iterator[Record]:
        return iter(self._records[offset:])

    def get(self, item_id: str) -> Record | None:
        return next((r for r in self._records if r.get("id") == item_id), None)

    def changes_since(self, seq: int) -> list[Change]:
        return []


class ChainCollection:
    """Several collections read one after another (a user's messages across all their chats)."""

    def __init__(self, kind: Any, parts: Sequence[Collection]) -> None:
        self.kind = kind
        self._parts = list(parts)

    def count(self) -> int:
        return sum(p.count() for p in self._parts)

    def iter_from(self, offset: int = 0) -> Iterator[Record]:
        for part in self._parts:
            size = part.count()
            if offset >= size:
                offset -= size
                continue
            yield from part.iter_from(offset)
            offset = 0

    def page(self, offset: int, limit: int) -> list[Record]:
        return list(itertools.islice(self.iter_from(offset), limit))

    def get(self, item_id: str) -> Record | None:
        for part in self._parts:
            found = part.get(item_id)
            if found is not None:
                return found
        return None

    def changes_since(self, seq: int) -> list[Change]:
        """The parts' change logs merged in tenant order (seq grows across the whole tenant)."""
        merged = [c for part in self._parts for c in part.changes_since(seq)]
        return sorted(merged, key=lambda c: c.seq)


class ReversedCollection:
    """Newest first over a collection stored oldest first (sign-ins: "the most recent sign-ins are returned
    first", signin-list.md). Read backwards in chunks so iteration stays lazy."""

    CHUNK = 500

    def __init__(self, inner: Collection) -> None:
        self.kind = inner.kind
        self._inner = inner

    def count(self) -> int:
        return self._inner.count()

    def page(self, offset: int, limit: int) -> list[Record]:
        end = self._inner.count() - offset
        if end <= 0 or limit <= 0:
            return []
        start = max(0, end - limit)
        return list(reversed(self._inner.page(start, end - start)))

    def iter_from(self, offset: int = 0) -> Iterator[Record]:
        end = self._inner.count() - offset
        while end > 0:
            start = max(0, end - self.CHUNK)
            yield from reversed(self._inner.page(start, end - start))
            end = start

    def get(self, item_id: str) -> Record | None:
        return self._inner.get(item_id)

    def changes_since(self, seq: int) -> list[Change]:
        return self._inner.changes_since(seq)


def sort_key(path: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    parts = path.split("/")

    def key(record: Mapping[str, Any]) -> tuple[int, Any]:
        value: Any = record
        for part in parts:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return (0, "")
        if isinstance(value, str):
            return (1, value.casefold())
        return (1, value)

    return key


def sort_records(records: list[Record], orderby: Sequence[tuple[str, bool]]) -> list[Record]:
    out = list(records)
    for path, desc in reversed(orderby):  # stable sorts, least significant key first
        key = sort_key(path)
        # OData: null is the smallest value (first ascending, last descending).
        out.sort(key=key, reverse=desc)
    return out


def matcher(node: odata_filter.Node | None, extra: Predicate | None) -> Predicate | None:
    if node is None and extra is None:
        return None

    def predicate(record: Mapping[str, Any]) -> bool:
        if extra is not None and not extra(record):
            return False
        return node is None or odata_filter.matches(node, record)

    return predicate


def compute_page(
    coll: Collection,
    *,
    start: int,
    top: int | None,
    predicate: Predicate | None = None,
    orderby: Sequence[tuple[str, bool]] = (),
    skip_counts_matches: bool = False,
    want_count: bool = False,
    scan_budget: int = SCAN_BUDGET,
) -> PageResult:
    """One page. `start` is a scan offset for skiptoken paging, or the number of matching records to skip
    (`skip_counts_matches`, Outlook's `$skip`)."""
    if orderby:
        rows = [r for r in coll.iter_from(0) if predicate is None or predicate(r)]
        rows = sort_records(rows, orderby)
        end = len(rows) if top is None else start + top
        nxt = end if end < len(rows) else None
        return PageResult(rows[start:end], nxt, len(rows) if want_count else None)

    count: int | None = None
    if want_count:
        count = coll.count() if predicate is None else sum(1 for r in coll.iter_from(0) if predicate(r))

    if predicate is None:
        total = coll.count()
        limit = total - start if top is None else top
        rows = coll.page(start, max(0, limit)) if start < total else []
        end = start + len(rows)
        return PageResult(rows, end if end < total else None, count)

    if skip_counts_matches:
        matched = (r for r in coll.iter_from(0) if predicate(r))
        window = list(itertools.islice(matched, start, None if top is None else start + top + 1))
        has_more = top is not None and len(window) > top
        rows = window[:top] if top is not None else window
        return PageResult(rows, start + len(rows) if has_more else None, count)

    rows = []
    position = start
    for scanned, record in enumerate(coll.iter_from(start)):
        if scanned >= scan_budget:
            return PageResult(rows, position, count)  # more to scan: a short (maybe empty) page and a cursor
        if predicate(record):
            if top is not None and len(rows) >= top:
                return PageResult(rows, position, count)  # the next page starts at this match
            rows.append(record)
        position += 1
    return PageResult(rows, None, count)
