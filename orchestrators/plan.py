"""Which partitions a run has and in what order: pure functions over the stream catalog.

A stream either is copied in one partition (top-level streams, and streams that walk their parents themselves)
or fans out over the ids of its parent stream. When parent ids are read from the run's own copy of the parent
stream, a fan-out group waits for whatever produces that stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NotRequired, TypedDict

from shared.streams import StreamSpec


class ParentGroup(TypedDict):
    """Child streams copied once per id of `parent_stream`."""

    parent_stream: str
    streams: list[str]
    after: str | None  # task label that must finish before the parents are listed; None = start at once


class SyncPlan(TypedDict):
    streams: list[str]  # every stream of the run, catalog order
    single: list[str]  # one partition each (parent_id None)
    groups: list[ParentGroup]
    fresh: NotRequired[list[str]]  # incremental streams with no checkpoint yet (the census); absent: none


def fresh_of(plan: SyncPlan, streams: Iterable[str]) -> list[str]:
    """The census's fresh streams among `streams` (a group's or a chunk's), in their order."""
    fresh = set(plan.get("fresh") or ())
    return [name for name in streams if name in fresh]


def stream_label(stream: str) -> str:
    return f"stream:{stream}"


def group_label(parent_stream: str) -> str:
    return f"group:{parent_stream}"


def plan_run(catalog: Mapping[str, StreamSpec], enabled: Iterable[str], *, parents_from_run: bool = False) -> SyncPlan:
    """Plan a run of the `enabled` streams; raises ValueError naming unknown streams.

    `parents_from_run`: the parent listing reads this run's copy of the parent stream, so a group must wait for
    it. The engine lists parents from Graph itself, so by default every group starts at once.
    """
    wanted = set(enabled)
    unknown = sorted(wanted - set(catalog))
    if unknown:
        raise ValueError(f"unknown stream(s) {', '.join(unknown)}; valid: {', '.join(catalog)}")
    streams = [name for name in catalog if name in wanted]
    single = [name for name in streams if catalog[name].partition_parent is None]
    children: dict[str, list[str]] = {}
    for name in streams:
        parent = catalog[name].partition_parent
        if parent is not None:
            children.setdefault(parent, []).append(name)
    groups = [
        ParentGroup(parent_stream=parent, streams=names,
                    after=_producer(catalog, parent, wanted) if parents_from_run else None)
        for parent, names in children.items()
    ]
    return SyncPlan(streams=streams, single=single, groups=groups)


def _producer(catalog: Mapping[str, StreamSpec], parent: str, wanted: set[str]) -> str | None:
    """The task that writes `parent`'s records in this run, if the run copies that stream at all."""
    if parent not in wanted:
        return None
    grandparent = catalog[parent].partition_parent
    return stream_label(parent) if grandparent is None else group_label(grandparent)


def partitions_of(streams: list[str], parent_ids: list[str]) -> list[tuple[str, str]]:
    """(stream, parent id) pairs parent-major, so one parent's streams run close together (mailbox locality)."""
    return [(stream, parent_id) for parent_id in parent_ids for stream in streams]
