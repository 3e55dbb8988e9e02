"""The sync orchestrators: plan, fan out per partition, fan in, write the manifest.

Generators only; every decision comes from the input and the activity results in history (time from the
context, ids from `new_uuid`), never from the environment or I/O, so replays stay deterministic.

Shape: `sync_run` runs the single-partition streams and one `sync_parent_group` sub-orchestration per parent
stream; each group lists the parent ids into blob chunks and runs one `sync_parent_chunk` per chunk with a
bounded number in flight; a chunk works through its ids in rounds (one activity per (stream, parent), a bounded
number in flight), saves each round's outcome records to a blob and continues as new, so no history grows with
the tenant: every replay costs the same whether the tenant has 100 users or 100,000.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from datetime import UTC
from typing import Any, NotRequired, TypedDict

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskBase, TaskState

from orchestrators import names, reruns
from orchestrators import progress as pg
from orchestrators.plan import ParentGroup, SyncPlan, group_label, partitions_of, stream_label
from shared.contracts import ManifestSummary, ParentListing, PartitionResult, RunInfo

Step = Generator[TaskBase, Any, Any]
log = logging.getLogger(__name__)
bp = df.Blueprint()

# Durable retries are for crashed or timed-out activities; Graph 429/5xx are retried inside the engine.
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)


class Limits(TypedDict):
    partitions_in_flight: int  # per chunk
    chunks_in_flight: int  # per parent stream
    parents_per_round: int  # ids per continue_as_new generation of a chunk: bounds its history
    reruns: NotRequired[int]  # re-run passes for transiently failed partitions (SYNC_PARTITION_RERUNS)
    rerun_delay_seconds: NotRequired[float]  # durable timer before the first pass, doubled per pass


# 20 parents x 4 user streams = 80 outcome records (~40 KB) per round: the round's `save_results` input stays
# under the Azure Storage provider's 45 KB queue-message size, above which it detours through a blob.
DEFAULT_LIMITS = Limits(partitions_in_flight=50, chunks_in_flight=4, parents_per_round=20,
                        reruns=reruns.DEFAULT_RERUNS, rerun_delay_seconds=reruns.DEFAULT_DELAY_SECONDS)


class GroupInput(TypedDict):
    run: RunInfo
    group: ParentGroup
    limits: Limits


class ChunkInput(TypedDict):
    run: RunInfo
    parent_stream: str
    streams: list[str]
    chunk: str
    index: int
    limits: Limits
    offset: NotRequired[int]
    round: NotRequired[int]
    tally: NotRequired[dict[str, pg.StreamProgress]]
    failed_streams: NotRequired[dict[str, PartitionResult]]  # first stream-wide failure per stream


class ChunkOutcome(TypedDict):
    parents: int
    tally: dict[str, pg.StreamProgress]


class GroupOutcome(TypedDict):
    parent_stream: str
    parents: int
    tally: dict[str, pg.StreamProgress]
    failures: list[PartitionResult]  # records for partitions that have no saved results (a chunk crashed)


def _orchestrator(name: str) -> Callable[[Callable[[df.DurableOrchestrationContext], Step]], Any]:
    """Typed wrapper of the SDK decorator (the SDK ships no type information)."""
    decorator: Callable[[Callable[[df.DurableOrchestrationContext], Step]], Any] = bp.orchestration_trigger(
        context_name="context", orchestration=name)
    return decorator


@_orchestrator(names.SYNC_RUN)
def sync_run(context: df.DurableOrchestrationContext) -> Step:
    """One run for one tenant; input: {tenant_id, trigger, overrides[, limits]} from a starter."""
    request: dict[str, Any] = context.get_input()
    run = RunInfo(
        run_id=context.new_uuid(),
        tenant_id=request["tenant_id"],
        trigger=request["trigger"],
        started_at=context.current_utc_datetime.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        overrides=request.get("overrides") or {},
    )
    limits = Limits(**{**DEFAULT_LIMITS, **(request.get("limits") or {})})
    context.set_custom_status(pg.status("planning", run["run_id"], {}))
    plan: SyncPlan = yield context.call_activity_with_retry(names.PLAN_SYNC, RETRY, run)
    if not context.is_replaying:
        log.info("sync run %s for tenant %s (%s): %d streams", run["run_id"], run["tenant_id"], run["trigger"],
                 len(plan["streams"]))

    streams = {name: pg.empty() for name in plan["streams"]}
    for name in plan["single"]:
        streams[name]["total"] = 1
    inline: list[PartitionResult] = []  # results not saved by a chunk: single partitions and crash records
    group_ids: dict[str, str] = {}
    running: dict[TaskBase, str] = {}
    finished: set[str] = set()
    waiting = list(plan["groups"])
    groups_by_label = {group_label(g["parent_stream"]): g for g in plan["groups"]}

    def start_ready_groups() -> None:
        for group in [g for g in waiting if g["after"] is None or g["after"] in finished]:
            waiting.remove(group)
            child_id = f"{context.instance_id}:{group['parent_stream']}"
            group_ids[group["parent_stream"]] = child_id
            task = context.call_sub_orchestrator(names.SYNC_PARENT_GROUP,
                                                 GroupInput(run=run, group=group, limits=limits), child_id)
            running[task] = group_label(group["parent_stream"])

    passes: dict[str, int] = {}  # re-run passes given to each single-partition stream
    for name in plan["single"]:
        running[_partition_task(context, run, name, None)] = stream_label(name)
    start_ready_groups()
    while running:
        context.set_custom_status(pg.status("syncing", run["run_id"], streams, groups=group_ids))
        winner = yield context.task_any(list(running))
        label = running.pop(winner)
        if label.startswith("rerun:"):  # the backoff timer fired: run the partition again
            name = label.removeprefix("rerun:")
            running[_partition_task(context, run, name, None)] = stream_label(name)
            continue
        if label.startswith("stream:"):
            name = label.removeprefix("stream:")
            result = _partition_outcome(winner, name, None)
            done_passes = passes.get(name, 0)
            if reruns.rerunnable(result) and done_passes < reruns.passes(limits):
                passes[name] = done_passes + 1
                fire_at = context.current_utc_datetime + reruns.delay(limits, done_passes)
                running[context.create_timer(fire_at)] = f"rerun:{name}"
                continue  # not finished: groups waiting on this stream keep waiting
            if done_passes:
                result["reruns"] = done_passes
            finished.add(label)
            inline.append(result)
            pg.add_result(streams[result["stream"]], result)
        else:
            finished.add(label)
            outcome = _group_outcome(winner, groups_by_label[label])
            inline.extend(outcome["failures"])  # a crashed group has no tally: count its failure records
            pg.merge(streams, outcome["tally"] or pg.tally(outcome["failures"]))
        start_ready_groups()
    if waiting:  # a dependency label never finished: a planning bug, never silently drop streams
        raise RuntimeError(f"groups never started: {[g['parent_stream'] for g in waiting]}")

    context.set_custom_status(pg.status("writing manifest", run["run_id"], streams, groups=group_ids))
    summary: ManifestSummary = yield context.call_activity_with_retry(
        names.WRITE_MANIFEST, RETRY, {"run": run, "results": inline})
    context.set_custom_status(pg.status("finished", run["run_id"], streams, groups=group_ids))
    if not context.is_replaying:
        log.info("sync run %s for tenant %s %s: %d partitions, %d ok, %d skipped, %d failed, %d records",
                 run["run_id"], run["tenant_id"], summary["status"], summary["partitions"], summary["ok"],
                 summary["skipped"], summary["failed"], summary["records"])
    return summary


@_orchestrator(names.SYNC_PARENT_GROUP)
def sync_parent_group(context: df.DurableOrchestrationContext) -> Step:
    """All child streams of one parent stream: list the parents, then one sub-orchestration per id chunk."""
    spec: GroupInput = context.get_input()
    run, group, limits = spec["run"], spec["group"], spec["limits"]
    listing: ParentListing = yield context.call_activity_with_retry(
        names.LIST_PARENTS, RETRY, {"run": run, "parent_stream": group["parent_stream"]})
    streams = {name: pg.empty(listing["count"]) for name in group["streams"]}
    failures: list[PartitionResult] = []
    chunk_ids = [f"{context.instance_id}:{index}" for index in range(len(listing["chunks"]))]
    running_chunks: set[str] = set()

    def report() -> None:
        context.set_custom_status(pg.status("syncing", run["run_id"], streams, parents=listing["count"],
                                            chunks=[c for c in chunk_ids if c in running_chunks]))

    def start(index: int) -> TaskBase:
        running_chunks.add(chunk_ids[index])
        report()
        chunk = ChunkInput(run=run, parent_stream=group["parent_stream"], streams=group["streams"],
                           chunk=listing["chunks"][index], index=index, limits=limits)
        return context.call_sub_orchestrator(names.SYNC_PARENT_CHUNK, chunk, chunk_ids[index])

    def finished(index: int, task: TaskBase) -> None:
        running_chunks.discard(chunk_ids[index])
        if task.state is TaskState.SUCCEEDED:
            outcome: ChunkOutcome = task.result
            for stream, counts in outcome["tally"].items():
                done = streams[stream]
                for key in ("done", "ok", "skipped", "failed", "records"):
                    done[key] += counts[key]
        else:
            for stream in group["streams"]:
                lost = _failed(stream, None, "ChunkFailed",
                               f"the {group['parent_stream']} in {listing['chunks'][index]} were not (all) copied: "
                               f"{_error_text(task)}")
                failures.append(lost)
                pg.add_result(streams[stream], lost)
        report()

    report()
    yield from bounded(context, len(listing["chunks"]), limits["chunks_in_flight"], start, finished)
    return GroupOutcome(parent_stream=group["parent_stream"], parents=listing["count"],
                        tally={name: {**counts, "total": counts["done"]} for name, counts in streams.items()},
                        failures=failures)


@_orchestrator(names.SYNC_PARENT_CHUNK)
def sync_parent_chunk(context: df.DurableOrchestrationContext) -> Step:
    """One round of one chunk of parent ids: one activity per (stream, parent), a bounded number at a time;
    then save the round's records and continue as new with the next round (history stays one round long)."""
    spec: ChunkInput = context.get_input()
    run, limits = spec["run"], spec["limits"]
    offset, round_ = spec.get("offset", 0), spec.get("round", 0)
    tally: dict[str, pg.StreamProgress] = spec.get("tally") or {name: pg.empty() for name in spec["streams"]}
    parent_ids: list[str] = yield context.call_activity_with_retry(names.READ_PARENT_CHUNK, RETRY,
                                                                    {"path": spec["chunk"]})
    for entry in tally.values():
        entry["total"] = len(parent_ids)
    batch = parent_ids[offset:offset + max(1, limits["parents_per_round"])]
    pairs = partitions_of(spec["streams"], batch)
    context.set_custom_status(pg.status("syncing", run["run_id"], tally))
    failed_streams: dict[str, PartitionResult] = spec.get("failed_streams") or {}

    def start(index: int) -> TaskBase | None:
        stream, parent_id = pairs[index]
        if stream in failed_streams:  # a missing permission fails every parent alike: do not ask Graph again
            return None
        return _partition_task(context, run, stream, parent_id)

    def finished(index: int, task: TaskBase | None) -> PartitionResult:
        stream, parent_id = pairs[index]
        if task is None:
            result = _not_attempted(failed_streams[stream], parent_id)
        else:
            result = _partition_outcome(task, stream, parent_id)
            if result["status"] == "failed" and result.get("failure_scope") == "stream":
                failed_streams.setdefault(stream, result)
        pg.add_result(tally[stream], result)
        context.set_custom_status(pg.status("syncing", run["run_id"], tally))
        return result

    results: list[PartitionResult] = yield from bounded(context, len(pairs), limits["partitions_in_flight"], start,
                                                        finished)
    yield from _rerun_failed(context, run, limits, pairs, results, tally, failed_streams)
    if results:
        key = names.results_key(spec["parent_stream"], spec["index"], round_)
        yield context.call_activity_with_retry(names.SAVE_RESULTS, RETRY, {"run": run, "key": key,
                                                                         "results": results})
    next_offset = offset + len(batch)
    if next_offset < len(parent_ids):
        context.continue_as_new({**spec, "offset": next_offset, "round": round_ + 1, "tally": tally,
                                 "failed_streams": failed_streams})
        return None
    return ChunkOutcome(parents=len(parent_ids), tally=tally)


def _rerun_failed(context: df.DurableOrchestrationContext, run: RunInfo, limits: Limits,
                  pairs: Sequence[tuple[str, str | None]], results: list[PartitionResult],
                  tally: dict[str, pg.StreamProgress], failed_streams: dict[str, PartitionResult]) -> Step:
    """Re-run the round's transiently failed partitions after a durable timer, up to `reruns` passes with a
    doubling delay; `results` and `tally` are updated in place, so only each partition's last outcome counts."""
    for attempt in range(reruns.passes(limits)):
        todo = [i for i, r in enumerate(results) if reruns.rerunnable(r)]
        if not todo:
            return
        yield context.create_timer(context.current_utc_datetime + reruns.delay(limits, attempt))
        for stream in {pairs[i][0] for i in todo}:
            seen = failed_streams.get(stream)
            if seen is not None and seen.get("retryable"):
                del failed_streams[stream]  # a transient stream-wide failure (Key Vault down): ask once more

        def start(k: int, todo: list[int] = todo) -> TaskBase | None:
            stream, parent_id = pairs[todo[k]]
            return None if stream in failed_streams else _partition_task(context, run, stream, parent_id)

        def finished(k: int, task: TaskBase | None, attempt: int = attempt, todo: list[int] = todo) -> None:
            index = todo[k]
            stream, parent_id = pairs[index]
            if task is None:
                result = _not_attempted(failed_streams[stream], parent_id)
            else:
                result = _partition_outcome(task, stream, parent_id)
                if result["status"] == "failed" and result.get("failure_scope") == "stream":
                    failed_streams.setdefault(stream, result)
            result["reruns"] = attempt + 1
            _forget(tally[stream], results[index])
            pg.add_result(tally[stream], result)
            results[index] = result
            context.set_custom_status(pg.status("syncing", run["run_id"], tally))

        yield from bounded(context, len(todo), limits["partitions_in_flight"], start, finished)


def _forget(entry: pg.StreamProgress, result: PartitionResult) -> None:
    """Take a superseded outcome back out of the counters before its re-run's outcome is added."""
    entry["done"] -= 1
    entry[result["status"]] -= 1
    entry["records"] -= int(result.get("records", 0))


def bounded(
    context: df.DurableOrchestrationContext,
    count: int,
    limit: int,
    start: Callable[[int], TaskBase | None],
    finished: Callable[[int, Any], Any],
) -> Generator[TaskBase, Any, list[Any]]:
    """Run `count` tasks with at most `limit` in flight; results in index order. A sliding window, not waves,
    so one slow mailbox does not hold back the next fifty. `start` may return None: nothing to run, and
    `finished(index, None)` supplies the result at once."""
    results: list[Any] = [None] * count
    running: dict[TaskBase, int] = {}
    next_index = 0
    while next_index < count or running:
        while next_index < count and len(running) < max(1, limit):
            task = start(next_index)
            if task is None:
                results[next_index] = finished(next_index, None)
            else:
                running[task] = next_index
            next_index += 1
        if not running:
            continue
        winner = yield context.task_any(list(running))
        index = running.pop(winner)
        results[index] = finished(index, winner)
    return results


def _partition_task(context: df.DurableOrchestrationContext, run: RunInfo, stream: str,
                    parent_id: str | None) -> TaskBase:
    return context.call_activity_with_retry(names.SYNC_PARTITION, RETRY,
                                            {"run": run, "stream": stream, "parent_id": parent_id})


def _error_text(task: TaskBase) -> str:
    text = str(task.result).strip()
    return text.splitlines()[0] if text else type(task.result).__name__


def _partition_outcome(task: TaskBase, stream: str, parent_id: str | None) -> PartitionResult:
    """The activity's own record, or a failed record when it crashed on every attempt (never lost)."""
    if task.state is TaskState.SUCCEEDED:
        result: PartitionResult = task.result
        return result
    return _failed(stream, parent_id, "ActivityFailed",
                   f"the partition activity failed {RETRY.max_number_of_attempts} times: {_error_text(task)}")


def _group_outcome(task: TaskBase, group: ParentGroup) -> GroupOutcome:
    if task.state is TaskState.SUCCEEDED:
        outcome: GroupOutcome = task.result
        return outcome
    failures = [_failed(stream, None, "ParentListingFailed",
                        f"could not copy {stream} per {group['parent_stream']}: {_error_text(task)}")
                for stream in group["streams"]]
    return GroupOutcome(parent_stream=group["parent_stream"], parents=0, tally={}, failures=failures)


def _not_attempted(first: PartitionResult, parent_id: str | None) -> PartitionResult:
    """The stream-wide failure seen on another parent, recorded for this one without a request."""
    result = _failed(first["stream"], parent_id, first.get("error_code", "Failed"), first.get("error_message", ""))
    result["reason"] = f"not attempted: the stream failed for every parent ({first.get('error_code')})"
    result["failure_scope"] = "stream"
    result["retryable"] = bool(first.get("retryable", False))
    return result


def _failed(stream: str, parent_id: str | None, code: str, message: str) -> PartitionResult:
    return PartitionResult(stream=stream, parent_id=parent_id, status="failed", reason=code, error_code=code,
                           error_message=message, kind="full", records=0, pages=0, requests=0, retries=0,
                           throttled=0, bytes=0, duration_s=0.0, blob_path=None)
