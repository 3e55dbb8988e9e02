"""The sync orchestrators: plan, fan out per partition, fan in, write the manifest.

Generators only; every decision comes from the input and the activity results in history (time from the
context, ids from `new_uuid`), never from the environment or I/O, so replays stay deterministic.

Shape: `sync_run` runs the single-partition streams and one `sync_parent_group` sub-orchestration per parent
stream; each group lists the parent ids into blob chunks and runs one `sync_parent_chunk` per chunk with a
bounded number in flight; a chunk keeps a sliding window of partition activities (one per (stream, parent)) in
flight, with no barrier between parents, parks outcome records in blobs in pieces as they arrive and continues as
new after a fixed number of partitions, so no history grows with the tenant: every replay costs the same whether
the tenant has 100 users or 100,000.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from datetime import UTC
from typing import Any, NotRequired, TypedDict

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskBase, TaskState

from orchestrators import names, replayspeed, reruns
from orchestrators import progress as pg
from orchestrators.plan import ParentGroup, SyncPlan, fresh_of, group_label, partitions_of, stream_label
from shared.contracts import ManifestSummary, ParentListing, PartitionResult, RunInfo

Step = Generator[TaskBase, Any, Any]
log = logging.getLogger(__name__)
bp = df.Blueprint()
replayspeed.install()  # every replay of these orchestrators parses its history's timestamps

# Durable retries are for crashed or timed-out activities; Graph 429/5xx are retried inside the engine.
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)


class Limits(TypedDict):
    partitions_in_flight: int  # per lane: a sliding window, the next partition starts when any one finishes
    chunks_in_flight: int  # per parent stream
    partitions_per_generation: int  # partitions per continue_as_new generation of a lane: bounds its history
    parents_per_lane: NotRequired[int]  # a chunk runs its ids as lanes of this many parents, all at once
    results_per_save: NotRequired[int]  # outcome records per `save_results` call: bounds its message size
    reruns: NotRequired[int]  # re-run passes for transiently failed partitions (SYNC_PARTITION_RERUNS)
    rerun_delay_seconds: NotRequired[float]  # durable timer before the first pass, doubled per pass


# Width comes from many narrow lanes, not from one wide window: the Durable SDK's cost per `task_any` grows with
# the tasks it waits on and every replay repeats every step of the generation, so replay CPU grows with
# window x generation length. One window of 100 over 200 partitions cost more CPU than the copies it scheduled;
# `python -m localrun measure` (500 users, 5 user streams, best of 3 on a shared machine): rounds of 20 parents
# 10.1 s of replay, lanes of 25 x 8 in flight with generations of 100 partitions 9.8 s, of 50 partitions 7.9 s,
# lanes of 50 x 16 in flight with generations of 50 partitions 4.6 s. So a chunk of 500 ids runs 10 lanes of
# 50 parents, each a sliding window of 16 (no barrier: a slow mailbox holds one slot of one lane) that continues
# as new every 50 partitions: 160 partitions in flight per chunk and 8 chunks per parent stream, more than a
# Functions instance's activity slots (host.json maxConcurrentActivityFunctions), so slots never wait.
# 50 outcome records (~25 KB, ~40 KB with long error texts) per save keep `save_results` inputs under the Azure
# Storage provider's 45 KB queue-message size, above which a message detours through a blob.
DEFAULT_RESULTS_PER_SAVE = 50
DEFAULT_PARENTS_PER_LANE = 50
DEFAULT_LIMITS = Limits(partitions_in_flight=16, chunks_in_flight=8, partitions_per_generation=50,
                        parents_per_lane=DEFAULT_PARENTS_PER_LANE, results_per_save=DEFAULT_RESULTS_PER_SAVE,
                        reruns=reruns.DEFAULT_RERUNS, rerun_delay_seconds=reruns.DEFAULT_DELAY_SECONDS)
_SAVE = -1  # marks a results save among a lane's running tasks
PROBE_IN_FLIGHT = 4  # partitions of a stream in flight until one shows the stream works (permissions, licences)


def parents_per_generation(limits: Limits, streams: int) -> int:
    """Whole parents per generation (a generation ends on a parent boundary, so `offset` counts parents)."""
    return max(1, int(limits["partitions_per_generation"]) // max(1, streams))


class GroupInput(TypedDict):
    run: RunInfo
    group: ParentGroup
    limits: Limits
    fresh: NotRequired[list[str]]  # the group's streams with no checkpoint yet (census); absent when none


class ChunkInput(TypedDict):
    run: RunInfo
    parent_stream: str
    streams: list[str]
    chunk: str
    index: int
    limits: Limits
    parent_ids: NotRequired[list[str]]  # set for a lane: its ids (at most parents_per_lane, ~1 KB per 25)
    lane: NotRequired[int]
    offset: NotRequired[int]
    saves: NotRequired[int]  # results pieces saved by earlier generations: the next results key number
    tally: NotRequired[dict[str, pg.StreamProgress]]
    failed_streams: NotRequired[dict[str, PartitionResult]]  # first stream-wide failure per stream
    proven_streams: NotRequired[list[str]]  # streams with an outcome other than a stream-wide failure
    fresh: NotRequired[list[str]]  # streams with no checkpoint yet (census); absent when none


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
            group_input = GroupInput(run=run, group=group, limits=limits)
            fresh_streams = fresh_of(plan, group["streams"])
            if fresh_streams:
                group_input["fresh"] = fresh_streams
            task = context.call_sub_orchestrator(names.SYNC_PARENT_GROUP, group_input, child_id)
            running[task] = group_label(group["parent_stream"])

    passes: dict[str, int] = {}  # re-run passes given to each single-partition stream
    fresh_singles = set(fresh_of(plan, plan["single"]))
    for name in plan["single"]:
        running[_partition_task(context, run, name, None, fresh=name in fresh_singles)] = stream_label(name)
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
        if spec.get("fresh"):
            chunk["fresh"] = spec["fresh"]
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
    """One chunk of parent ids (one blob of the listing): its lanes as sub-orchestrations, all at once; a chunk
    small enough for one lane is that lane itself. A lane's generations carry their ids in the input."""
    spec: ChunkInput = context.get_input()
    if "parent_ids" in spec:
        lane_outcome: ChunkOutcome | None = yield from _lane(context, spec)
        return lane_outcome
    parent_ids: list[str] = yield context.call_activity_with_retry(names.READ_PARENT_CHUNK, RETRY,
                                                                    {"path": spec["chunk"]})
    size = max(1, int(spec["limits"].get("parents_per_lane", DEFAULT_PARENTS_PER_LANE)))
    lanes = [parent_ids[i:i + size] for i in range(0, len(parent_ids), size)]
    if len(lanes) <= 1:
        single: ChunkOutcome | None = yield from _lane(context, {**spec, "parent_ids": parent_ids, "lane": 0})
        return single
    outcome: ChunkOutcome = yield from _lanes(context, spec, lanes)
    return outcome


def _lanes(context: df.DurableOrchestrationContext, spec: ChunkInput, lanes: list[list[str]]) -> Step:
    """Run every lane of a chunk and add up their tallies; a lane that failed fails the chunk after the others
    finished (their outcome records are saved already; the group records the chunk's failure)."""
    run = spec["run"]
    parents = sum(len(ids) for ids in lanes)
    tally = {name: pg.empty(parents) for name in spec["streams"]}
    lane_ids = [f"{context.instance_id}:{n}" for n in range(len(lanes))]
    running: set[str] = set()
    errors: list[str] = []

    def report() -> None:
        context.set_custom_status(pg.status("syncing", run["run_id"], tally,
                                            lanes=[lane for lane in lane_ids if lane in running]))

    def start(n: int) -> TaskBase:
        running.add(lane_ids[n])
        lane = ChunkInput(run=run, parent_stream=spec["parent_stream"], streams=spec["streams"],
                          chunk=spec["chunk"], index=spec["index"], limits=spec["limits"], parent_ids=lanes[n],
                          lane=n)
        if spec.get("fresh"):
            lane["fresh"] = spec["fresh"]
        return context.call_sub_orchestrator(names.SYNC_PARENT_CHUNK, lane, lane_ids[n])

    def finished(n: int, task: TaskBase) -> None:
        running.discard(lane_ids[n])
        if task.state is TaskState.SUCCEEDED:
            lane_outcome: ChunkOutcome = task.result
            for stream, counts in lane_outcome["tally"].items():
                for key in ("done", "ok", "skipped", "failed", "records"):
                    tally[stream][key] += counts[key]
        else:
            errors.append(f"lane {n}: {_error_text(task)}")
        report()

    report()
    yield from bounded(context, len(lanes), len(lanes), start, finished)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(lanes)} lanes failed; first: {errors[0]}")
    return ChunkOutcome(parents=parents, tally=tally)


def _lane(context: df.DurableOrchestrationContext, spec: ChunkInput) -> Step:
    """One generation of one lane: a sliding window of partition activities (the next one starts as soon as
    any finishes, so a slow mailbox holds back nobody), outcome records parked in blobs in pieces while the
    window keeps running; after `partitions_per_generation` partitions it drains, re-runs what failed
    transiently and continues as new, so its history (and every replay) stays the same size for any tenant."""
    run, limits = spec["run"], spec["limits"]
    offset = spec.get("offset", 0)
    saves = [spec.get("saves", 0)]  # next results key number; carried across generations
    tally: dict[str, pg.StreamProgress] = spec.get("tally") or {name: pg.empty() for name in spec["streams"]}
    parent_ids = spec.get("parent_ids") or []
    for entry in tally.values():
        entry["total"] = len(parent_ids)
    batch = parent_ids[offset:offset + parents_per_generation(limits, len(spec["streams"]))]
    pairs = partitions_of(spec["streams"], batch)
    context.set_custom_status(pg.status("syncing", run["run_id"], tally))
    failed_streams: dict[str, PartitionResult] = spec.get("failed_streams") or {}
    per_save = max(1, int(limits.get("results_per_save", DEFAULT_RESULTS_PER_SAVE)))
    unsaved: list[tuple[int, PartitionResult]] = []
    held: list[tuple[int, PartitionResult]] = []  # transient failures: re-run once the window has drained
    fresh = set(spec.get("fresh") or ())

    def start(index: int) -> TaskBase | None:
        stream, parent_id = pairs[index]
        if stream in failed_streams:  # a missing permission fails every parent alike: do not ask Graph again
            return None
        return _partition_task(context, run, stream, parent_id, fresh=stream in fresh)

    def finished(index: int, task: TaskBase | None) -> None:
        stream, parent_id = pairs[index]
        if task is None:
            result = _not_attempted(failed_streams[stream], parent_id)
        else:
            result = _partition_outcome(task, stream, parent_id)
            if result["status"] == "failed" and result.get("failure_scope") == "stream":
                failed_streams.setdefault(stream, result)
        if result["status"] != "failed" or result.get("failure_scope") != "stream":
            proven.add(stream)
        pg.add_result(tally[stream], result)
        (held if reruns.rerunnable(result) and reruns.passes(limits) else unsaved).append((index, result))
        context.set_custom_status(pg.status("syncing", run["run_id"], tally))

    def save(records: list[tuple[int, PartitionResult]]) -> TaskBase:
        key = names.results_key(spec["parent_stream"], spec["index"], spec.get("lane", 0), saves[0])
        saves[0] += 1
        ordered = [result for _, result in sorted(records, key=lambda pair: pair[0])]
        return context.call_activity_with_retry(names.SAVE_RESULTS, RETRY, {"run": run, "key": key,
                                                                           "results": ordered})

    window = max(1, limits["partitions_in_flight"])
    probe = min(window, PROBE_IN_FLIGHT)
    proven: set[str] = set(spec.get("proven_streams") or [])
    per_stream: dict[str, int] = {name: 0 for name in spec["streams"]}
    waiting = list(range(len(pairs)))  # not started yet, in order
    running: dict[TaskBase, int] = {}  # partition index, or _SAVE for a results save
    partitions_running = 0

    def fill() -> None:
        """Start waiting partitions in order up to the window; a stream not proven yet (no outcome other than
        a stream-wide failure) runs only `probe` at a time, so a missing permission is asked a few times, not
        once per slot of the window. Stops early when nothing more can start (replay cost stays linear)."""
        nonlocal partitions_running
        position = 0
        while position < len(waiting) and partitions_running < window:
            index = waiting[position]
            stream = pairs[index][0]
            if stream not in proven and stream not in failed_streams and per_stream[stream] >= probe:
                if _all_blocked(per_stream, proven, failed_streams, probe):
                    return
                position += 1
                continue
            del waiting[position]
            task = start(index)
            if task is None:
                finished(index, None)
            else:
                running[task] = index
                per_stream[stream] += 1
                partitions_running += 1

    while waiting or running:
        fill()
        while len(unsaved) >= per_save:  # park a full piece without waiting for it: the window keeps going
            running[save(unsaved[:per_save])] = _SAVE
            del unsaved[:per_save]
        if not running:
            continue
        winner = yield context.task_any(list(running))
        index = running.pop(winner)
        if index == _SAVE:
            _raise_if_failed(winner, "saving partition results")
        else:
            partitions_running -= 1
            per_stream[pairs[index][0]] -= 1
            finished(index, winner)
    if held:
        held_pairs = [pairs[i] for i, _ in held]
        held_results = [result for _, result in held]
        yield from _rerun_failed(context, run, limits, held_pairs, held_results, tally, failed_streams)
        unsaved.extend((i, result) for (i, _), result in zip(held, held_results, strict=True))
    while unsaved:
        piece, unsaved = unsaved[:per_save], unsaved[per_save:]
        yield save(piece)
    next_offset = offset + len(batch)
    if next_offset < len(parent_ids):
        context.continue_as_new({**spec, "offset": next_offset, "saves": saves[0], "tally": tally,
                                 "failed_streams": failed_streams, "proven_streams": sorted(proven)})
        return None
    return ChunkOutcome(parents=len(parent_ids), tally=tally)


def _rerun_failed(context: df.DurableOrchestrationContext, run: RunInfo, limits: Limits,
                  pairs: Sequence[tuple[str, str | None]], results: list[PartitionResult],
                  tally: dict[str, pg.StreamProgress], failed_streams: dict[str, PartitionResult]) -> Step:
    """Re-run a generation's transiently failed partitions after a durable timer, up to `reruns` passes with a
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


def _all_blocked(per_stream: dict[str, int], proven: set[str], failed: dict[str, PartitionResult],
                 probe: int) -> bool:
    """Every stream still waiting on its probes: no later partition could start either."""
    return all(name not in proven and name not in failed and count >= probe for name, count in per_stream.items())


def _raise_if_failed(task: TaskBase, what: str) -> None:
    """A save that failed on every durable retry fails the chunk (its group records the chunk as failed)."""
    if task.state is not TaskState.SUCCEEDED:
        raise RuntimeError(f"{what} failed {RETRY.max_number_of_attempts} times: {_error_text(task)}")


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


def _partition_task(context: df.DurableOrchestrationContext, run: RunInfo, stream: str, parent_id: str | None,
                    *, fresh: bool = False) -> TaskBase:
    """`fresh`: the census found no checkpoint of the stream, so the activity skips reading one. Re-run passes
    never set it: after a failure, the checkpoint may exist (another run's, or this run's own save)."""
    request: dict[str, Any] = {"run": run, "stream": stream, "parent_id": parent_id}
    if fresh:
        request["fresh"] = True
    return context.call_activity_with_retry(names.SYNC_PARTITION, RETRY, request)


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
