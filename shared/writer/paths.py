"""Deterministic, lake-friendly blob paths. Pure.

Graph ids contain `/`, `+`, `=`, `%`, unicode and can be ~1,000 characters, and an id is attacker-influenced data
(a chat topic, a drive name never, but an Outlook id is opaque): a partition name is therefore a readable,
sanitised prefix plus a SHA-256 digest of the exact id. It is unique, never escapes its folder, stays far below
Blob's 1,024-character name limit, and is the same on every retry, so a retried partition overwrites its own blob.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from shared.contracts import RunInfo

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SAFE_RUN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
WHOLE_STREAM = "_all"


def partition_name(parent_id: str | None) -> str:
    if parent_id is None:
        return WHOLE_STREAM
    readable = _UNSAFE.sub("_", parent_id)[:40].strip("_")
    digest = hashlib.sha256(parent_id.encode("utf-8")).hexdigest()[:32]
    return f"{readable}~{digest}" if readable else f"~{digest}"


def ingest_date(run: RunInfo) -> str:
    started = run["started_at"]
    try:
        return datetime.fromisoformat(started.replace("Z", "+00:00")).strftime("%Y-%m-%d")
    except ValueError:
        raise ValueError(f"run started_at {started!r} is not ISO 8601") from None


def safe_run_id(run_id: str) -> str:
    if not _SAFE_RUN.match(run_id) or ".." in run_id:
        raise ValueError(f"run_id {run_id!r} must be 1-128 letters, digits, '.', '_' or '-'")
    return run_id


def run_folder(prefix: str, run: RunInfo, stream: str) -> str:
    parts = [prefix, run["tenant_id"], stream, f"ingest_date={ingest_date(run)}", f"run={safe_run_id(run['run_id'])}"]
    return "/".join(p for p in parts if p)


def partition_path(prefix: str, run: RunInfo, stream: str, parent_id: str | None, output_format: str) -> str:
    return f"{run_folder(prefix, run, stream)}/{partition_name(parent_id)}.{output_format}"


def parents_folder(prefix: str, run: RunInfo, parent_stream: str) -> str:
    return run_folder(prefix, run, f"_parents/{parent_stream}")


def manifest_folder(prefix: str, run: RunInfo) -> str:
    return run_folder(prefix, run, "_runs")
