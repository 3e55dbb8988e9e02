"""Incremental reads of one partition: delta queries with stored deltaLinks, and time windows for logs.

`prepare()` loads the partition's checkpoint and decides snapshot or changes; `copy()` writes change records
into the partition's writer; the caller commits the data blob and only then calls `save()`. A resync code from
Graph (410, `syncStateNotFound`, `resyncRequired`, drive resync codes) restarts this partition alone as a
snapshot; the result says so.

`fresh_streams()` is the run's census: the streams with no checkpoint at all, asked once per stream at planning
time, so that their partitions skip a download that can only answer 404 (one Storage call per mailbox on a first
sync). A checkpoint that appears after the census is caught by the save, which creates with `If-None-Match: *`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared import delta as rules
from shared import mailbox_plan as mbx
from shared import windows
from shared.config import Settings
from shared.contracts import PartitionKind, PartitionResult, RunInfo
from shared.delta import IncrementalPlan
from shared.graph import Action, GraphRequestError, RequestStats
from shared.graph.batch import BatchReader, Get, Outcome
from shared.graph.client import Page
from shared.graph.query import encode_query, odata_time, select_columns
from shared.runtime import Engine
from shared.state import Checkpoint, CheckpointSaveError, CheckpointStore, any_checkpoint, prune_departed
from shared.streams import CATALOG, StreamSpec, quote_segment
from shared.writer.blob import BlockBlobJsonlWriter
from shared.writer.records import RecordShaper

WHOLE = ""
"""Cursor key of a partition that has a single delta cursor."""


class _Resync(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _resync_code(exc: GraphRequestError) -> str | None:
    return exc.decision.code if exc.decision.action is Action.RESYNC else None


@dataclass(slots=True)
class Incremental:
    engine: Engine
    settings: Settings
    run: RunInfo
    spec: StreamSpec
    plan: IncrementalPlan
    parent_id: str | None
    store: CheckpointStore
    query: dict[str, Any]
    previous: Checkpoint | None
    etag: str | None
    forced_full: bool
    assumed_absent: bool = False
    """The census found no checkpoint of this stream, so none was read; see `save`."""
    kind: PartitionKind = "snapshot"
    resynced: str | None = None
    partial_error: GraphRequestError | None = None
    new: Checkpoint | None = None
    _stats: RequestStats = field(default_factory=RequestStats)
    _write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Folders of one mailbox are read concurrently; their pages reach the writer one at a time."""

    # --- public ----------------------------------------------------------------------------------------------
    async def copy(self, writer: BlockBlobJsonlWriter, stats: RequestStats) -> None:
        self._stats = stats
        fingerprint = rules.query_fingerprint(self.query)
        start = self.previous
        if start is not None and start.run_id == self.run["run_id"]:
            start = start.restart_point()  # this run already saved once: redo it from where it began
        usable = start if (start is not None and not self.forced_full and start.fingerprint == fingerprint) else None
        self.new = Checkpoint(self.spec.name, self.parent_id, fingerprint, self.query, etag=self.etag,
                              prior=usable.start_state() if usable is not None else None)
        shaper = self._shaper()
        if self.plan.mode == "window":
            await self._window(writer, shaper, usable)
            return
        try:
            self.kind = "changes" if usable is not None else "snapshot"
            await self._delta(writer, shaper, usable)
        except _Resync as again:
            # Only this partition starts over; what was staged so far is dropped by a fresh writer state.
            writer.reset()
            self.resynced = again.code
            self.kind = "snapshot"
            self.new.cursors.clear()
            await self._delta(writer, shaper, None)

    async def save(self) -> None:
        """Advance the checkpoint. A partition that skipped the read on the census's word creates it; if it
        exists, either another run created it since the census (CheckpointConflict, exactly a lost race), or an
        earlier attempt of this very run did (a durable retry after the save). The latter started from nothing
        too, so this attempt's snapshot is what a read would have redone: replace it."""
        assert self.new is not None
        run_id = self.run["run_id"]
        try:
            await self.store.save(self.new, run_id)
        except CheckpointSaveError as exc:
            if not self.assumed_absent or exc.code != "CheckpointConflict":
                raise
            current, etag = await self.store.load(self.spec.name, self.parent_id)
            if current is None or etag is None or current.run_id != run_id or current.prior is not None:
                raise
            self.new.etag = etag
            await self.store.save(self.new, run_id)

    # --- delta -----------------------------------------------------------------------------------------------
    def _shaper(self) -> RecordShaper:
        extracted = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return RecordShaper(tenant_id=self.run["tenant_id"], extracted_at=extracted,
                            snake_case=self.settings.snake_case, parent_key=self.spec.parent_key,
                            parent_id=self.parent_id)

    def _headers(self, share: int = 1) -> dict[str, str] | None:
        """Outlook page size; `share` items of one `$batch` split one page's worth between them, so an envelope of
        up to twenty first pages stays about as large as one ordinary page (memory, GRAPH_MAX_PAGE_MB); the rest
        of a big folder follows on its nextLinks at the full size."""
        if not self.plan.outlook:
            return None
        size = self.settings.page_size_for(self.spec.name) or 100
        return {"Prefer": f"odata.maxpagesize={max(mbx.BATCH_PAGE_FLOOR, size // max(1, share))}"}

    async def _pages(self, link: str, *, stored: bool) -> AsyncIterator[Page]:
        """Pages of one delta round; a resync answer to a stored link becomes `_Resync` (a fresh query's own
        410 is a real failure: retrying it would loop)."""
        try:
            async for page in self.engine.graph.pages(link, self.run["tenant_id"], spec=self.spec,
                                                      parent_scoped=self.spec.parent is not None,
                                                      stats=self._stats, headers=self._headers()):
                yield page
        except GraphRequestError as exc:
            code = _resync_code(exc)
            if code is not None and stored:
                raise _Resync(code) from None
            raise

    async def _round(self, writer: BlockBlobJsonlWriter, shaper: RecordShaper, start: str, stored: bool,
                     changes: bool) -> str | None:
        """Follow one round to its deltaLink, writing change records; returns the deltaLink."""
        delta_link: str | None = None
        async for page in self._pages(start, stored=stored):
            await self._emit(writer, shaper, page.records, changes)
            delta_link = page.delta_link or delta_link
        return delta_link

    async def _emit(self, writer: BlockBlobJsonlWriter, shaper: RecordShaper, records: list[dict[str, Any]],
                    changes: bool) -> None:
        out = []
        for record in records:
            shaped = rules.change_record(record)
            if shaped is None:
                continue
            if self._out_of_view(shaped):
                shaped = rules.deletion(shaped["id"], "outsideWindow")
            if not changes and shaped[rules.CHANGE] == "deleted":
                continue  # a snapshot holds what exists; a removal inside it says nothing to a consumer
            out.append(shaped)
        async with self._write_lock:
            await writer.write(shaper.jsonl(out), len(out))

    def _out_of_view(self, shaped: dict[str, Any]) -> bool:
        window = self.query.get("window")
        if not window or shaped[rules.CHANGE] != "upsert":
            return False
        low, high = (windows.parse_time(w) for w in window)
        return rules.outside_window(shaped, low, high)

    def _initial_url(self, folder: str | None) -> str:
        path = self.plan.path
        if self.parent_id is not None:
            path = path.replace("{parent}", quote_segment(self.parent_id))
        if folder is not None:
            path = path.replace("{folder}", quote_segment(folder))
        params: list[tuple[str, str]] = []
        q = self.query
        if q.get("select"):
            params.append(("$select", ",".join(q["select"])))
        if q.get("filter"):
            params.append(("$filter", q["filter"]))
        if q.get("window"):
            params.append(("startDateTime", q["window"][0]))
            params.append(("endDateTime", q["window"][1]))
        if q.get("top"):
            params.append(("$top", str(q["top"])))
        url = self.settings.graph_root + path
        return f"{url}?{encode_query(params)}" if params else url

    async def _delta(self, writer: BlockBlobJsonlWriter, shaper: RecordShaper, usable: Checkpoint | None) -> None:
        assert self.new is not None
        if self.plan.mode == "members":
            await self._members(writer, shaper, usable)
            return
        if self.plan.mode == "folders":
            await self._mailbox(writer, shaper, usable)
            return
        link = usable.cursors.get(WHOLE) if usable is not None else None
        found = await self._round(writer, shaper, link or self._initial_url(None), stored=link is not None,
                                  changes=link is not None)
        if found:
            self.new.cursors[WHOLE] = found

    # --- mailbox partitions: every folder of the hierarchy, one batch per round ----------------------------------
    async def _mailbox(self, writer: BlockBlobJsonlWriter, shaper: RecordShaper, usable: Checkpoint | None) -> None:
        """One `$batch` for the hierarchy check plus every stored folder deltaLink (a first read: the hierarchy,
        then one batch with every folder's first page); folders with more pages continue on their nextLinks, up to
        four at once (Outlook's per-mailbox limit, which the client's mailbox limiter enforces). A removed folder
        resyncs the partition: its items can no longer be reported as deleted one by one."""
        assert self.new is not None and self.parent_id is not None
        reader = BatchReader(self.engine.graph, self.settings.graph_root, self.run["tenant_id"], self.spec,
                             parent_scoped=True, stats=self._stats)
        stored_hierarchy = usable.cursors.get(mbx.HIERARCHY) if usable is not None else None
        if usable is not None and stored_hierarchy is None:
            raise _Resync("FolderHierarchyUnknown")
        old = mbx.folder_cursors(usable.cursors) if usable is not None else {}
        default_folder = bool(self.plan.default_folder_path)
        share = mbx.batch_share(1 + len(old))
        gets = [Get(mbx.HIERARCHY, stored_hierarchy or self._hierarchy_url(), self._headers(share))]
        if default_folder and not old:
            gets.append(Get(mbx.PROBE, self._probe_url()))
        gets += [Get(folder, link, self._headers(share)) for folder, link in old.items()]
        outcomes = await reader.get_many(gets)
        records, hierarchy_link = await self._hierarchy(outcomes[mbx.HIERARCHY], stored=stored_hierarchy is not None)
        hierarchy = mbx.read_hierarchy(records)
        probe: list[str] = []
        if mbx.PROBE in outcomes:
            probe = mbx.default_from_items(mbx.page_body(self._ok(outcomes[mbx.PROBE], stored=False)).records)
        if usable is None:
            fresh = mbx.snapshot_folders(hierarchy, probe, default_folder=default_folder)
        else:
            change = mbx.diff(old, hierarchy, probe, default_folder=default_folder)
            if change.removed:
                raise _Resync("FolderRemoved")
            fresh = change.added
        follow: list[tuple[str, str, bool, bool]] = []
        for folder in old:
            follow += await self._first_page(writer, shaper, folder, outcomes[folder], stored=True)
        if fresh:
            share = mbx.batch_share(len(fresh))
            firsts = await reader.get_many([Get(f, self._initial_url(f), self._headers(share)) for f in fresh])
            for folder in fresh:
                follow += await self._first_page(writer, shaper, folder, firsts[folder], stored=False)
        await self._follow(writer, shaper, follow)
        if hierarchy_link:
            self.new.cursors[mbx.HIERARCHY] = hierarchy_link

    def _hierarchy_url(self) -> str:
        assert self.parent_id is not None
        path = self.plan.folders_path.replace("{parent}", quote_segment(self.parent_id))
        return f"{self.settings.graph_root}{path}?{encode_query([('$select', 'id,parentFolderId')])}"

    def _probe_url(self) -> str:
        """The default folder's items, one of them: its `parentFolderId` names the folder the listing omits."""
        assert self.parent_id is not None
        path = self.plan.default_folder_path.replace("{parent}", quote_segment(self.parent_id))
        return f"{self.settings.graph_root}{path}?{encode_query([('$select', 'id,parentFolderId'), ('$top', '1')])}"

    def _ok(self, outcome: Outcome, *, stored: bool) -> dict[str, Any]:
        """A batch item's body; its error raised as a lone GET's would be (a resync code on a stored link
        restarts only this partition)."""
        if isinstance(outcome, GraphRequestError):
            code = _resync_code(outcome)
            if code is not None and stored:
                raise _Resync(code)
            raise outcome
        return outcome

    async def _hierarchy(self, outcome: Outcome, *, stored: bool) -> tuple[list[dict[str, Any]], str | None]:
        """Every folder record of a hierarchy round (its nextLinks followed) and the round's deltaLink."""
        page = mbx.page_body(self._ok(outcome, stored=stored))
        records = list(page.records)
        delta_link = page.delta_link
        if page.next_link is not None:
            async for more in self._pages(page.next_link, stored=stored):
                records += more.records
                delta_link = more.delta_link or delta_link
        return records, delta_link

    async def _first_page(self, writer: BlockBlobJsonlWriter, shaper: RecordShaper, folder: str, outcome: Outcome,
                          *, stored: bool) -> list[tuple[str, str, bool, bool]]:
        """Write a folder's first page from a batch; the folder's nextLink when the round goes on."""
        assert self.new is not None
        page = mbx.page_body(self._ok(outcome, stored=stored))
        self._stats.pages += 1
        await self._emit(writer, shaper, page.records, stored)
        if page.delta_link:
            self.new.cursors[folder] = page.delta_link
        return [(folder, page.next_link, stored, stored)] if page.next_link else []

    async def _follow(self, writer: BlockBlobJsonlWriter, shaper: RecordShaper,
                      rounds: list[tuple[str, str, bool, bool]]) -> None:
        """Continue the folders that have more pages, up to four at once; the first failure stops the others."""
        assert self.new is not None
        gate = asyncio.Semaphore(4)

        async def one(folder: str, link: str, stored: bool, changes: bool) -> None:
            assert self.new is not None
            async with gate:
                found = await self._round(writer, shaper, link, stored, changes)
            if found:
                self.new.cursors[folder] = found

        tasks = [asyncio.ensure_future(one(*r)) for r in rounds]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _members(self, writer: BlockBlobJsonlWriter, shaper: RecordShaper, usable: Checkpoint | None) -> None:
        """Group membership: changes come from `members@delta` of `groups/delta` filtered to this group. The
        snapshot takes a `$deltatoken=latest` link FIRST and then reads `/groups/{id}/members` in full, so a change
        made during the read is replayed next run rather than lost."""
        assert self.new is not None and self.parent_id is not None
        link = usable.cursors.get(WHOLE) if usable is not None else None
        if link is not None:
            delta_link: str | None = None
            async for page in self._pages(link, stored=True):
                out: list[dict[str, Any]] = []
                for entry in page.records:
                    if entry.get("id") == self.parent_id:  # a filtered round must not leak other groups
                        out += rules.member_changes(entry)
                await writer.write(shaper.jsonl(out), len(out))
                delta_link = page.delta_link or delta_link
            if delta_link:
                self.new.cursors[WHOLE] = delta_link
            return
        flt = f"id eq {rules.odata_quote(self.parent_id)}"
        latest = (f"{self.settings.graph_root}/groups/delta?"
                  f"{encode_query([('$filter', flt), ('$select', 'id,members'), ('$deltatoken', 'latest')])}")
        async for page in self._pages(latest, stored=False):
            if page.delta_link:
                self.new.cursors[WHOLE] = page.delta_link
        top = self.settings.page_size_for(self.spec.name)
        params = [("$top", str(top))] if top else []
        select = select_columns(self.settings, self.spec)
        if select:
            params.insert(0, ("$select", ",".join(select)))
        url = f"{self.settings.graph_root}{self.spec.path_for(self.parent_id)}"
        url = f"{url}?{encode_query(params)}" if params else url
        async for page in self.engine.graph.pages(url, self.run["tenant_id"], spec=self.spec, parent_scoped=True,
                                                  stats=self._stats):
            out = [{**r, rules.CHANGE: "upsert"} for r in page.records if isinstance(r.get("id"), str)]
            await writer.write(shaper.jsonl(out), len(out))

    # --- time windows ------------------------------------------------------------------------------------------
    async def _window(self, writer: BlockBlobJsonlWriter, shaper: RecordShaper, usable: Checkpoint | None) -> None:
        assert self.new is not None and self.spec.date_column is not None
        column = self.spec.date_column
        start_cfg, end_cfg = self.settings.date_window_for(self.spec.name)
        started = windows.parse_time(self.run["started_at"])
        watermark = windows.parse_time(usable.watermark) if usable is not None and usable.watermark else None
        self.kind = "changes" if usable is not None else "snapshot"
        dedup = windows.EdgeDedup.load(usable.edge if usable is not None else None)
        low, high = windows.read_range(watermark, start_cfg, end_cfg, started)
        self.new.watermark = usable.watermark if usable is not None else None
        self.new.edge = dict(usable.edge) if usable is not None else {}
        select = select_columns(self.settings, self.spec)
        top = self.settings.page_size_for(self.spec.name)
        for slice_low, slice_high in windows.slices(low, high):
            clauses = [f"{column} lt {odata_time(slice_high)}"]
            if slice_low is not None:
                clauses.insert(0, f"{column} ge {odata_time(slice_low)}")
            params: list[tuple[str, str]] = []
            if select:
                params.append(("$select", ",".join(select)))
            if top:
                params.append(("$top", str(top)))
            params.append(("$filter", " and ".join(clauses)))
            url = f"{self.settings.graph_root}{self.spec.path_for(None)}?{encode_query(params)}"
            try:
                async for page in self.engine.graph.pages(url, self.run["tenant_id"], spec=self.spec,
                                                          parent_scoped=False, stats=self._stats):
                    fresh = dedup.fresh(page.records, column, remember_from=slice_high - windows.OVERLAP)
                    out = [{**r, rules.CHANGE: "upsert"} for r in fresh]
                    await writer.write(shaper.jsonl(out), len(out))
            except GraphRequestError as exc:
                # Slices already read stay written and counted in the checkpoint; the next run resumes here.
                self.partial_error = exc
                return
            self.new.watermark = windows.iso(slice_high)
            self.new.edge = dedup.edge(slice_high)


def _query(settings: Settings, run: RunInfo, spec: StreamSpec, plan: IncrementalPlan) -> dict[str, Any]:
    """The query a checkpoint belongs to; any difference starts a fresh snapshot."""
    q: dict[str, Any] = {"stream": spec.name, "mode": plan.mode, "path": plan.path, "snake_case": settings.snake_case}
    if plan.select:
        q["select"] = list(select_columns(settings, spec) or ()) or None
    if plan.top:
        q["top"] = settings.page_size_for(spec.name)
    start, end = settings.date_window_for(spec.name)
    if plan.calendar_window:
        low, high = rules.calendar_window(run["started_at"], start, end)
        q["window"] = [odata_time(low), odata_time(high)]
    elif plan.mode == "window":
        q["start"] = odata_time(start) if start else None
        q["end"] = odata_time(end) if end else None
    elif spec.name == "mail_messages" and start is not None:
        # Message delta accepts only `receivedDateTime ge`; the end of the window cannot be sent.
        q["filter"] = f"receivedDateTime ge {odata_time(start)}"
    if plan.mode == "folders":
        q["folders"] = "hierarchy-delta"  # cursors of older checkpoints lack the hierarchy's deltaLink
    if spec.parent == "users":
        q["scope"] = {"user_filter": settings.user_filter, "user_groups": sorted(settings.user_groups)}
    return q


async def prepare(engine: Engine, settings: Settings, run: RunInfo, spec: StreamSpec,
                  parent_id: str | None, *, fresh: bool = False) -> Incremental | None:
    """The incremental reader of this partition, or None for a full-only stream. `fresh`: the run's census
    found no checkpoint of this stream, so the partition starts as if its own were absent without asking."""
    plan = rules.plan_for(spec.name)
    if plan is None:
        return None
    store = CheckpointStore(engine, settings.output_prefix, run["tenant_id"])
    previous, etag = (None, None) if fresh else await store.load(spec.name, parent_id)
    forced = bool((run.get("overrides") or {}).get("full"))
    return Incremental(engine, settings, run, spec, plan, parent_id, store, _query(settings, run, spec, plan),
                       previous, etag, forced, assumed_absent=fresh)


async def fresh_streams(engine: Engine, settings: Settings, run: RunInfo, streams: list[str]) -> list[str]:
    """The incremental streams among `streams` without a single checkpoint in this tenant's lake, in the given
    order: one listing call per stream, all at once."""
    incremental = [name for name in streams if name in CATALOG and rules.plan_for(name) is not None]
    found = await asyncio.gather(*(any_checkpoint(engine, settings.output_prefix, run["tenant_id"], name)
                                   for name in incremental))
    return [name for name, exists in zip(incremental, found, strict=True) if not exists]


async def prune_checkpoints(engine: Engine, settings: Settings, run: RunInfo,
                            results: list[PartitionResult]) -> int:
    """After a run: forget the checkpoints of partitions the run no longer has (see `prune_departed`). Streams
    whose parent listing failed (a failed result without a parent) are left alone: their live set is unknown."""
    by_stream: dict[str, set[str | None]] = {}
    blocked: set[str] = set()
    for r in results:
        spec = CATALOG.get(r["stream"])
        if spec is None or spec.partition_parent is None or rules.plan_for(spec.name) is None:
            continue
        if r["parent_id"] is None:
            blocked.add(spec.name)
            continue
        by_stream.setdefault(spec.name, set()).add(r["parent_id"])
    removed = 0
    for stream, live in by_stream.items():
        if stream not in blocked:
            removed += await prune_departed(engine, settings.output_prefix, run["tenant_id"], stream, live)
    return removed
