"""Drive the engine the way the orchestrator does (list parents, read chunks, fan out), for tests and bench."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Collection
from typing import Any

import orjson

from shared.config import Settings
from shared.contracts import PartitionResult, RunInfo
from shared.runtime import get_engine
from shared.streams import CATALOG
from shared.sync import list_parents, read_parent_chunk, sync_partition


async def run_streams(settings: Settings, run: RunInfo, streams: list[str] | None = None,
                      concurrency: int = 16, fresh: Collection[str] = ()) -> dict[str, list[PartitionResult]]:
    """`fresh`: the streams the run's census found without checkpoints (the orchestrator's `fresh` flag)."""
    gate = asyncio.Semaphore(concurrency)
    parent_cache: dict[str, list[str]] = {}

    async def one(stream: str, parent_id: str | None) -> PartitionResult:
        async with gate:
            return await sync_partition(settings, run, stream, parent_id, fresh=stream in fresh)

    results: dict[str, list[PartitionResult]] = {}
    for stream in streams or list(CATALOG):
        parent = CATALOG[stream].partition_parent
        if parent is None:
            results[stream] = [await one(stream, None)]
            continue
        if parent not in parent_cache:
            listing = await list_parents(settings, run, parent)
            ids: list[str] = []
            for chunk in listing["chunks"]:
                ids += await read_parent_chunk(settings, chunk)
            assert len(ids) == listing["count"]
            parent_cache[parent] = ids
        results[stream] = list(await asyncio.gather(*(one(stream, p) for p in parent_cache[parent])))
    return results


async def read_records(settings: Settings, path: str) -> list[dict[str, Any]]:
    engine = await get_engine(settings)
    data = await (await engine.blob(path).download_blob()).readall()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return [orjson.loads(line) for line in data.splitlines()]
