"""One partition = one (stream, parent) copy from Graph into one blob. Never raises for a partition's failure.

Activities call `sync_partition(settings, run, stream, parent_id)`; the result says ok / skipped (with the
reason, e.g. no mailbox) / failed (with Graph's code, a message naming the missing permission when that is the
cause, and whether the failure is the whole stream's or this partition's), plus the numbers the manifest sums.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from azure.core.exceptions import AzureError, ClientAuthenticationError

from shared import incremental
from shared.auth import GraphAuthError, SecretReadError
from shared.config import ConfigError, Settings, with_overrides
from shared.contracts import FailureScope, PartitionResult, RunInfo
from shared.graph import Action, GraphRequestError, OffHostLinkError, RequestStats
from shared.graph.query import partition_url
from shared.manifest import write_manifest
from shared.parents import WALK_CONCURRENCY, first_error, list_parents, parent_ids, read_parent_chunk
from shared.runtime import Engine, get_engine
from shared.state import CheckpointSaveError
from shared.streams import CATALOG, StreamSpec
from shared.writer.blob import BlockBlobJsonlWriter
from shared.writer.paths import partition_path
from shared.writer.records import RecordShaper

log = logging.getLogger("shared.sync")

__all__ = ["census", "list_parents", "read_parent_chunk", "sync_partition", "write_manifest"]


def _result(stream: str, parent_id: str | None) -> PartitionResult:
    return PartitionResult(stream=stream, parent_id=parent_id, status="ok", kind="full", records=0, pages=0,
                           requests=0, retries=0, throttled=0, bytes=0, duration_s=0.0, blob_path=None)


def _fail(result: PartitionResult, code: str, message: str, *, scope: FailureScope = "partition",
          retryable: bool = False, request_id: str | None = None) -> None:
    result["status"] = "failed"
    result["error_code"] = code
    result["error_message"] = message
    result["failure_scope"] = scope
    result["retryable"] = retryable
    if request_id:
        result["request_id"] = request_id


async def _copy(engine: Engine, settings: Settings, run: RunInfo, spec: StreamSpec, parent_id: str | None,
                writer: BlockBlobJsonlWriter, stats: RequestStats, walk_skips: list[str]) -> None:
    tenant_id = run["tenant_id"]
    extracted_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if spec.fan_out or spec.parent is None:
        shaper = RecordShaper(tenant_id=tenant_id, extracted_at=extracted_at, snake_case=settings.snake_case,
                              parent_key=spec.parent_key, parent_id=parent_id)
        url = partition_url(settings, spec, parent_id)
        async for page in engine.graph.pages(url, tenant_id, spec=spec, parent_scoped=spec.parent is not None,
                                             stats=stats):
            await writer.write(shaper.jsonl(page.records), len(page.records))
        return
    # Shared entities (chats): walk every parent, emit each entity once. Parents are walked WALK_CONCURRENCY at
    # a time (serial per-user fan-out is what makes peers' chat syncs take hours).
    assert spec.parent is not None
    shaper = RecordShaper(tenant_id=tenant_id, extracted_at=extracted_at, snake_case=settings.snake_case)
    seen: set[str] = set()
    gate = asyncio.Semaphore(WALK_CONCURRENCY)

    async def walk(walked: str) -> None:
        try:
            async for page in engine.graph.pages(partition_url(settings, spec, walked), tenant_id, spec=spec,
                                                 parent_scoped=True, stats=stats):
                fresh = []
                for record in page.records:
                    rid = record.get(spec.id_column)
                    if isinstance(rid, str) and rid not in seen:
                        seen.add(rid)
                        fresh.append(record)
                await writer.write(shaper.jsonl(fresh), len(fresh))
        except GraphRequestError as exc:
            if exc.decision.action is not Action.SKIP_PARENT:
                raise
            walk_skips.append(exc.decision.code)
        finally:
            gate.release()

    try:
        async with asyncio.TaskGroup() as group:
            async for walked in parent_ids(engine, settings, tenant_id, spec.parent, stats):
                await gate.acquire()
                group.create_task(walk(walked))
    except BaseExceptionGroup as errors:
        raise first_error(errors) from None


async def sync_partition(settings: Settings, run: RunInfo, stream: str, parent_id: str | None, *,
                         fresh: bool = False) -> PartitionResult:
    """`fresh`: the run's census found no checkpoint of this stream (see `census`), so none is read."""
    started = time.monotonic()
    result = _result(stream, parent_id)
    stats = RequestStats()
    writer: BlockBlobJsonlWriter | None = None
    walk_skips: list[str] = []
    try:
        spec = CATALOG.get(stream)
        if spec is None:
            _fail(result, "UnknownStream", f"unknown stream {stream!r}; valid: {', '.join(CATALOG)}", scope="stream")
            return result
        if spec.partition_parent is not None and parent_id is None:
            _fail(result, "MissingParent", f"stream {stream} needs a {spec.parent_key} partition", scope="stream")
            return result
        effective = with_overrides(settings, run.get("overrides") or {})
        engine = await get_engine(effective)
        await engine.ensure_container()
        path = partition_path(effective.output_prefix, run, stream, parent_id if spec.fan_out else None,
                              effective.output_format)
        metadata = {"stream": stream, "tenant_id": run["tenant_id"], "run_id": run["run_id"]}
        if parent_id is not None and len(parent_id) <= 1500:
            metadata["parent_id_b64"] = base64.urlsafe_b64encode(parent_id.encode("utf-8")).decode("ascii")
        writer = BlockBlobJsonlWriter(engine.blob(path), gzip=effective.output_format == "jsonl.gz",
                                      metadata=metadata)
        reader = await incremental.prepare(engine, effective, run, spec, parent_id, fresh=fresh)
        if reader is None:
            await _copy(engine, effective, run, spec, parent_id, writer, stats, walk_skips)
            await writer.commit({"records": str(writer.records), "kind": "full"})
        else:
            await reader.copy(writer, stats)
            await writer.commit({"records": str(writer.records), "kind": reader.kind})
            result["kind"] = reader.kind
            if reader.resynced:
                result["resynced"] = reader.resynced
            await reader.save()  # only after the data blob is committed: a crash in between repeats work
            if reader.partial_error is not None:
                result["blob_path"] = path  # failed, yet the slices before the failure are committed: apply them
                raise reader.partial_error
        result["blob_path"] = path
        if walk_skips:
            result["reason"] = f"{len(walk_skips)} parent(s) skipped: {', '.join(sorted(set(walk_skips)))}"
    except GraphRequestError as exc:
        decision = exc.decision
        if decision.action is Action.SKIP_PARENT:
            result["status"] = "skipped"
            result["reason"] = decision.reason
            result["error_code"] = decision.code
        else:
            _fail(result, decision.code, decision.reason,
                  scope="stream" if decision.action is Action.FAIL_STREAM else "partition", retryable=exc.retryable,
                  request_id=exc.request_id)
    except CheckpointSaveError as exc:
        _fail(result, exc.code, str(exc), retryable=True)
    except OffHostLinkError as exc:
        _fail(result, OffHostLinkError.code, str(exc))
    except ConfigError as exc:
        _fail(result, "ConfigError", "; ".join(exc.problems), scope="stream")
    except (GraphAuthError, SecretReadError) as exc:
        _fail(result, exc.code, str(exc), scope="stream", retryable=exc.code in ("AuthorityUnavailable",
                                                                                 "KeyVaultUnavailable"))
    except ClientAuthenticationError as exc:
        # Same for every partition: the workload identity cannot get a token, or Blob refuses it.
        code = "WorkloadIdentityUnavailable" if exc.status_code is None else f"Storage{exc.status_code}"
        _fail(result, code, "the function's identity cannot write to the data lake: check AZURE_CLIENT_ID (the "
              "user-assigned managed identity) and its 'Storage Blob Data Contributor' role on "
              f"{settings.output_account_url}", scope="stream")
    except AzureError as exc:
        _fail(result, "StorageError", f"writing the blob failed: {type(exc).__name__}", retryable=True)
    except Exception as exc:  # a bug must cost one partition, not the run
        log.exception("partition crashed: stream=%s", stream)
        _fail(result, "InternalError", f"{type(exc).__name__} in the sync engine", retryable=True)
    finally:
        result["records"] = writer.records if writer and result["status"] == "ok" else 0
        result["bytes"] = writer.bytes_written if writer and result["status"] == "ok" else 0
        result["pages"] = stats.pages
        result["requests"] = stats.requests
        result["retries"] = stats.retries
        result["throttled"] = stats.throttled
        result["duration_s"] = round(time.monotonic() - started, 3)
        _log_partition(run, result)
    return result


async def census(settings: Settings, run: RunInfo, streams: list[str]) -> list[str]:
    """The run's incremental streams that have no checkpoint yet (their partitions skip the read). Only a saving:
    when Storage cannot answer, every partition reads its checkpoint as before and reports the Storage fault
    itself, so the run is never failed here."""
    try:
        effective = with_overrides(settings, run.get("overrides") or {})
        engine = await get_engine(effective)
        return await incremental.fresh_streams(engine, effective, run, streams)
    except (AzureError, ConfigError) as exc:
        log.warning("checkpoint census skipped: run_id=%s error=%s", run.get("run_id"), type(exc).__name__)
        return []


def _log_partition(run: RunInfo, result: PartitionResult) -> None:
    line: dict[str, Any] = {"event": "partition", "run_id": run.get("run_id"), "tenant_id": run.get("tenant_id"),
                            **result}
    level = logging.WARNING if result["status"] == "failed" else logging.INFO
    log.log(level, "%s", orjson.dumps(line).decode("utf-8"))
