"""JSON-native shapes that cross the durable boundary between orchestrators, activities and the engine.

They are TypedDicts (not classes) because Durable Functions serialises activity inputs and outputs as JSON:
only dict/list/str/int/float/bool/None survive replay unchanged.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Trigger = Literal["timer", "http", "local"]
PartitionStatus = Literal["ok", "skipped", "failed"]
PartitionKind = Literal["snapshot", "changes", "full"]
FailureScope = Literal["partition", "stream"]


class RunInfo(TypedDict):
    """Identity of one sync run; fixed by the orchestrator, so replays see the same values."""

    run_id: str
    tenant_id: str
    trigger: Trigger
    started_at: str  # ISO 8601 UTC, taken from the orchestration context
    overrides: dict[str, Any]  # validated POST /api/syncs body: streams, start_time, end_time, user_filter, full


class PartitionResult(TypedDict):
    """Outcome of one (stream, parent) partition; activities return it instead of raising."""

    stream: str
    parent_id: str | None
    status: PartitionStatus
    reason: NotRequired[str]  # why skipped, e.g. MailboxNotEnabledForRESTAPI
    error_code: NotRequired[str]  # Graph error.code (innermost meaningful) when failed
    error_message: NotRequired[str]  # names the missing permission or licence when that is the cause
    request_id: NotRequired[str]  # Graph request-id of the failing response
    failure_scope: NotRequired[FailureScope]  # "stream": every partition of the stream fails alike (permission)
    retryable: NotRequired[bool]  # a later attempt may succeed (throttling, network, storage)
    kind: PartitionKind  # snapshot: replaces the partition; changes: apply by id; full: a copy with no state
    resynced: NotRequired[str]  # why a delta partition was re-read in full (Graph's resync code)
    reruns: NotRequired[int]  # re-run passes the orchestration gave it after a transient failure
    records: int
    pages: int
    requests: int
    retries: int
    throttled: int
    bytes: int
    duration_s: float
    blob_path: str | None


class ParentListing(TypedDict):
    """Ids of parent entities (users, groups, teams, chats, roles) written to blob chunks, never inline."""

    parent_stream: str
    count: int
    chunks: list[str]  # blob paths, each a JSON list of ids


class ManifestSummary(TypedDict):
    """Orchestration output: the manifest's headline numbers and where it is."""

    run_id: str
    tenant_id: str
    status: Literal["succeeded", "failed"]
    manifest_path: str
    success_marker: bool
    partitions: int
    ok: int
    skipped: int
    failed: int
    records: int
    streams: dict[str, dict[str, int]]
