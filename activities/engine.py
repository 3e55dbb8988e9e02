"""The engine entry points the activities call (ARCHITECTURE.md, "Engine <-> activities")."""

from __future__ import annotations

from typing import Any

from shared.contracts import ManifestSummary, ParentListing, PartitionResult, RunInfo


async def list_parents(run: RunInfo, parent_stream: str) -> ParentListing:
    from shared.sync import list_parents as impl  # type: ignore[import-not-found]

    result: ParentListing = await impl(run, parent_stream)
    return result


async def read_parent_chunk(path: str) -> list[str]:
    from shared.sync import read_parent_chunk as impl

    result: list[str] = await impl(path)
    return result


async def sync_partition(run: RunInfo, stream: str, parent_id: str | None) -> PartitionResult:
    from shared.sync import sync_partition as impl

    result: PartitionResult = await impl(run, stream, parent_id)
    return result


async def write_manifest(run: RunInfo, results: list[Any]) -> ManifestSummary:
    from shared.sync import write_manifest as impl

    result: ManifestSummary = await impl(run, results)
    return result
