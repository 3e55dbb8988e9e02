"""Function names shared by the orchestrators, the activities and the starters (the durable wire contract)."""

from __future__ import annotations

SYNC_RUN = "sync_run"
SYNC_PARENT_GROUP = "sync_parent_group"
SYNC_PARENT_CHUNK = "sync_parent_chunk"

PLAN_SYNC = "plan_sync"
LIST_PARENTS = "list_parents"
READ_PARENT_CHUNK = "read_parent_chunk"
SYNC_PARTITION = "sync_partition"
SAVE_RESULTS = "save_results"
WRITE_MANIFEST = "write_manifest"

ORCHESTRATORS = (SYNC_RUN, SYNC_PARENT_GROUP, SYNC_PARENT_CHUNK)
ACTIVITIES = (PLAN_SYNC, LIST_PARENTS, READ_PARENT_CHUNK, SYNC_PARTITION, SAVE_RESULTS, WRITE_MANIFEST)


def results_key(parent_stream: str, chunk: int, lane: int, piece: int) -> str:
    """Deterministic name of one saved piece of a lane's results: a replayed save overwrites, never duplicates."""
    return f"{parent_stream}/{chunk:05d}-{lane:03d}-{piece:05d}"


def run_instance_id(tenant_id: str) -> str:
    """Fixed per tenant: at most one run per tenant at a time (timer and HTTP starts share it)."""
    return f"sync-{tenant_id}"
