"""Partition outcome records parked in the lake between a chunk's round and the manifest.

A run's records can number in the hundreds of thousands; passing them through orchestration inputs and outputs
would put them in every replayed history. Each round saves its records under a deterministic name (a retried
round overwrites itself), and the manifest step reads them all back.
"""

from __future__ import annotations

import orjson

from shared.config import Settings
from shared.contracts import PartitionResult, RunInfo
from shared.runtime import get_engine
from shared.writer.paths import manifest_folder

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/")


def results_folder(settings: Settings, run: RunInfo) -> str:
    return f"{manifest_folder(settings.output_prefix, run)}/_results"


def results_path(settings: Settings, run: RunInfo, key: str) -> str:
    if not key or not set(key) <= _KEY_CHARS or ".." in key or key.startswith("/"):
        raise ValueError(f"results key {key!r} must be letters, digits, '_', '-' and '/' segments")
    return f"{results_folder(settings, run)}/{key}.json"


async def save_results(settings: Settings, run: RunInfo, key: str, results: list[PartitionResult]) -> str:
    engine = await get_engine(settings)
    await engine.ensure_container()
    path = results_path(settings, run, key)
    await engine.blob(path).upload_blob(orjson.dumps(results), overwrite=True)
    return path


async def load_results(settings: Settings, run: RunInfo) -> list[PartitionResult]:
    """Every saved record of the run, in name order (so the manifest lists partitions in a stable order)."""
    engine = await get_engine(settings)
    container = engine.blob_service.get_container_client(settings.output_container)
    names = sorted([blob.name async for blob in container.list_blobs(name_starts_with=results_folder(settings, run)
                                                                      + "/")])
    results: list[PartitionResult] = []
    for name in names:
        downloader = await engine.blob(name).download_blob()
        results.extend(orjson.loads(await downloader.readall()))
    return results
