"""Parent ids (users in scope, groups, teams, roles, chats, drives) for the fan-out.

Ids are streamed page by page and de-duplicated where Graph repeats them (a chat belongs to all its members, a
user can be in several scoping groups). The fan-out list is written to blob chunks, never returned inline,
because a durable activity's output is stored in the orchestration history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
from azure.core.exceptions import ResourceNotFoundError

from shared.config import Settings, with_overrides
from shared.contracts import ParentListing, RunInfo
from shared.graph import Action, GraphRequestError, RequestStats
from shared.graph.query import ids_url
from shared.runtime import Engine, get_engine
from shared.streams import CATALOG, get_stream, quote_segment
from shared.writer.paths import parents_folder

CHUNK_SIZE = 500
WALK_CONCURRENCY = 8
QUEUE_SIZE = 1000
USER_TYPE = "#microsoft.graph.user"


class ParentListingError(Exception):
    """Listing parents failed for good (e.g. a missing permission); the message names the fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def _ids(engine: Engine, tenant_id: str, url: str, headers: dict[str, str], stream: str, *,
               parent_scoped: bool, stats: RequestStats, users_only: bool = False) -> AsyncIterator[str]:
    spec = get_stream(stream)
    async for page in engine.graph.pages(url, tenant_id, spec=spec, parent_scoped=parent_scoped, stats=stats,
                                         headers=headers):
        for record in page.records:
            if users_only and record.get("@odata.type", USER_TYPE) != USER_TYPE:
                continue
            rid = record.get("id")
            if isinstance(rid, str):
                yield rid


async def scoped_user_ids(engine: Engine, settings: Settings, tenant_id: str,
                          stats: RequestStats) -> AsyncIterator[str]:
    """Users in scope: transitive user members of SYNC_USER_GROUPS, narrowed by SYNC_USER_FILTER; else all."""
    if settings.user_groups:
        members: dict[str, None] = {}
        for group_id in settings.user_groups:
            url, headers = ids_url(settings, f"/groups/{quote_segment(group_id)}/transitiveMembers", top=999)
            try:
                async for uid in _ids(engine, tenant_id, url, headers, "group_member", parent_scoped=True,
                                      stats=stats, users_only=True):
                    members[uid] = None
            except GraphRequestError as exc:
                if exc.decision.action is Action.SKIP_PARENT:
                    raise ParentListingError("ScopeGroupNotFound",
                                             f"SYNC_USER_GROUPS: group {group_id} does not exist in tenant "
                                             f"{tenant_id}; remove it or use the group's object id") from None
                raise
        if not settings.user_filter:
            for uid in members:
                yield uid
            return
        url, headers = ids_url(settings, "/users", top=999, flt=settings.user_filter)
        async for uid in _ids(engine, tenant_id, url, headers, "users", parent_scoped=False, stats=stats):
            if uid in members:
                yield uid
        return
    url, headers = ids_url(settings, "/users", top=999, flt=settings.user_filter)
    async for uid in _ids(engine, tenant_id, url, headers, "users", parent_scoped=False, stats=stats):
        yield uid


async def parent_ids(engine: Engine, settings: Settings, tenant_id: str, parent_stream: str,
                     stats: RequestStats, skipped: list[str] | None = None) -> AsyncIterator[str]:
    """Ids of `parent_stream`, walking its own parents when it is nested (chats, drives); duplicates dropped."""
    spec = get_stream(parent_stream)
    if parent_stream == "users":
        async for uid in scoped_user_ids(engine, settings, tenant_id, stats):
            yield uid
        return
    top = settings.page_size_for(spec.name)
    if spec.parent is None:
        url, headers = ids_url(settings, spec.path, top=top)
        async for rid in _ids(engine, tenant_id, url, headers, spec.name, parent_scoped=False, stats=stats):
            yield rid
        return
    async for rid in _walked_ids(engine, settings, tenant_id, spec.name, spec.parent, top, stats, skipped):
        yield rid


async def _walked_ids(engine: Engine, settings: Settings, tenant_id: str, stream: str, parent: str,
                      top: int | None, stats: RequestStats, skipped: list[str] | None) -> AsyncIterator[str]:
    """Ids of a nested stream (chats, drives), WALK_CONCURRENCY parents at a time, each id once.

    Walkers feed a bounded queue, so memory holds the de-duplication set and at most QUEUE_SIZE pending ids.
    """
    spec = get_stream(stream)
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=QUEUE_SIZE)
    seen: set[str] = set()
    gate = asyncio.Semaphore(WALK_CONCURRENCY)

    async def walk(grand: str) -> None:
        url, headers = ids_url(settings, spec.path_for(grand), top=top)
        try:
            async for rid in _ids(engine, tenant_id, url, headers, stream, parent_scoped=True, stats=stats):
                if rid not in seen:
                    seen.add(rid)
                    await queue.put(rid)
        except GraphRequestError as exc:
            if exc.decision.action is not Action.SKIP_PARENT:
                raise
            if skipped is not None:
                skipped.append(grand)
        finally:
            gate.release()

    async def produce() -> None:
        try:
            async with asyncio.TaskGroup() as group:
                async for grand in parent_ids(engine, settings, tenant_id, parent, stats, skipped):
                    await gate.acquire()
                    group.create_task(walk(grand))
        finally:
            await queue.put(None)

    producer = asyncio.ensure_future(produce())
    try:
        while (rid := await queue.get()) is not None:
            yield rid
        try:
            await producer
        except BaseExceptionGroup as errors:
            raise first_error(errors) from None
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception, BaseExceptionGroup):
                await producer


def first_error(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error of a task group (not the cancellations it caused)."""
    for error in errors.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return first_error(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return errors.exceptions[0]


async def list_parents(settings: Settings, run: RunInfo, parent_stream: str) -> ParentListing:
    """Write the ids of `parent_stream` (in scope for this run) to JSON chunks of CHUNK_SIZE ids."""
    if parent_stream not in CATALOG:
        raise ParentListingError("UnknownStream", f"unknown parent stream {parent_stream!r}")
    effective = with_overrides(settings, run.get("overrides") or {})
    engine = await get_engine(effective)
    await engine.ensure_container()
    folder = parents_folder(effective.output_prefix, run, parent_stream)
    chunks: list[str] = []
    batch: list[str] = []
    count = 0
    stats = RequestStats()

    async def flush() -> None:
        path = f"{folder}/chunk-{len(chunks):05d}.json"
        await engine.blob(path).upload_blob(orjson.dumps(batch), overwrite=True)
        chunks.append(path)
        batch.clear()

    try:
        async for pid in parent_ids(engine, effective, run["tenant_id"], parent_stream, stats):
            batch.append(pid)
            count += 1
            if len(batch) >= CHUNK_SIZE:
                await flush()
    except GraphRequestError as exc:
        hint = f" (SYNC_USER_FILTER {effective.user_filter!r})" if parent_stream == "users" and \
            effective.user_filter and exc.status == 400 else ""
        raise ParentListingError(exc.decision.code, f"listing {parent_stream} failed{hint}: {exc}") from None
    if batch:
        await flush()
    return ParentListing(parent_stream=parent_stream, count=count, chunks=chunks)


async def read_parent_chunk(settings: Settings, path: str) -> list[str]:
    engine = await get_engine(settings)
    try:
        downloader = await engine.blob(path).download_blob()
    except ResourceNotFoundError:
        raise ParentListingError("ChunkNotFound", f"parent chunk {path!r} does not exist") from None
    data = orjson.loads(await downloader.readall())
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise ParentListingError("ChunkCorrupt", f"parent chunk {path!r} is not a JSON list of ids")
    return data
