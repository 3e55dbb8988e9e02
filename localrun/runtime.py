"""A local Durable Task host: runs orchestration instances episode by episode through the real SDK.

It keeps each instance's history the way DTFx does (scheduling events before `OrchestratorCompleted`,
completions after the next `OrchestratorStarted`, several completions folded into one episode like a
control-queue batch), executes activities for real and concurrently on the event loop with a bounded pool
(like host.json `maxConcurrentActivityFunctions`), runs sub-orchestrations as their own instances, fires
timers (virtually by default, so retries do not sleep) and checks every replay for non-determinism.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from localrun import history as h
from localrun.registry import FunctionIndex, UnknownFunctionError
from localrun.replay import Episode, NonDeterminismError, PendingWork, check_determinism, run_episode

log = logging.getLogger(__name__)

RUNNING_STATES = frozenset({"Pending", "Running", "ContinuedAsNew"})
Redeliver = Callable[[str, Any, int], bool]


class InstanceExistsError(RuntimeError):
    """A start for an instance id that is still running (host.json overridableExistingInstanceStates)."""

    def __init__(self, instance_id: str, status: str) -> None:
        super().__init__(f"An Orchestration instance with the status {status} already exists.")
        self.instance_id = instance_id
        self.status = status


@dataclass(slots=True)
class RuntimeOptions:
    max_concurrent_activities: int = 8
    max_batch: int = 32  # completions per episode: the Azure Storage provider's control-queue batch
    virtual_timers: bool = True  # fire timers at once and move the orchestration clock forward instead
    max_episodes: int = 100_000
    max_generations: int = 1_000  # continue_as_new cap
    redeliver: Redeliver | None = None  # (activity, input, delivery) -> lose this delivery's result?
    activity_timeout: float | None = None  # seconds; like host.json functionTimeout, a slow activity fails
    shuffle_seed: int | None = None  # deliver completions in random order and random batch sizes (seeded)


@dataclass(slots=True)
class InstanceMetrics:
    episodes: int = 0
    replay_seconds: float = 0.0
    max_replay_seconds: float = 0.0
    max_state_bytes: int = 0
    activities: int = 0
    deliveries: int = 0


@dataclass(slots=True)
class Instance:
    instance_id: str
    name: str
    input_json: str | None
    parent_id: str | None
    created: datetime
    updated: datetime
    status: str = "Pending"
    custom_status: Any = None
    output: Any = None
    error: str | None = None
    history: list[h.Event] = field(default_factory=list)
    metrics: InstanceMetrics = field(default_factory=InstanceMetrics)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    runner: asyncio.Task[None] | None = None
    events: asyncio.Queue[tuple[str, str | None]] = field(default_factory=asyncio.Queue)

    def status_json(self, show_input: bool = False, show_history: bool = False) -> dict[str, Any]:
        """The instance as the extension's status API reports it."""
        body: dict[str, Any] = {
            "name": self.name,
            "instanceId": self.instance_id,
            "runtimeStatus": self.status,
            "customStatus": self.custom_status,
            "output": self.output if self.status != "Failed" else self.error,
            "createdTime": h.timestamp(self.created)[:-8] + "Z",
            "lastUpdatedTime": h.timestamp(self.updated)[:-8] + "Z",
        }
        if show_input:
            body["input"] = json.loads(self.input_json) if self.input_json is not None else None
        if show_history:
            body["historyEvents"] = self.history
        return body


@dataclass(slots=True)
class _Completion:
    task_id: int | str
    events: list[h.Event]
    fire_at: datetime | None = None


class DurableRuntime:
    """Starts instances and drives them to completion; one per local run or test."""

    def __init__(self, index: FunctionIndex, options: RuntimeOptions | None = None) -> None:
        self.index = index
        self.options = options or RuntimeOptions()
        self.instances: dict[str, Instance] = {}
        self._pool = asyncio.Semaphore(self.options.max_concurrent_activities)
        self._skew = timedelta(0)
        self._uuid_counter = 0
        self._deliveries: dict[tuple[str, str | None], int] = {}
        self._random = random.Random(self.options.shuffle_seed)

    # -- clock ---------------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.now(UTC) + self._skew

    def _advance_to(self, moment: datetime) -> None:
        lag = moment - self.now()
        if lag > timedelta(0):
            self._skew += lag

    # -- client API ----------------------------------------------------------------------------------------
    async def start_new(self, name: str, instance_id: str | None = None, input_json: str | None = None,
                        parent_id: str | None = None) -> str:
        """Create and start an instance; refuses to replace one that is still running."""
        self.index.orchestrator(name)
        if instance_id is None:
            self._uuid_counter += 1
            instance_id = f"{self._uuid_counter:032x}"
        existing = self.instances.get(instance_id)
        if existing is not None and existing.status in RUNNING_STATES:
            raise InstanceExistsError(instance_id, existing.status)
        moment = self.now()
        instance = Instance(instance_id=instance_id, name=name, input_json=input_json, parent_id=parent_id,
                            created=moment, updated=moment)
        self.instances[instance_id] = instance
        instance.runner = asyncio.create_task(self._drive(instance), name=f"orchestration {instance_id}")
        return instance_id

    def get(self, instance_id: str) -> Instance | None:
        return self.instances.get(instance_id)

    async def wait(self, instance_id: str) -> Instance:
        instance = self.instances[instance_id]
        await instance.done.wait()
        return instance

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        await self.instances[instance_id].events.put((name, json.dumps(data)))

    async def terminate(self, instance_id: str, reason: str) -> None:
        instance = self.instances[instance_id]
        if instance.status in RUNNING_STATES and instance.runner is not None:
            instance.runner.cancel()
            await asyncio.gather(instance.runner, return_exceptions=True)
            instance.status, instance.output, instance.updated = "Terminated", reason, self.now()
            instance.done.set()

    async def close(self) -> None:
        """Stop every running instance (the host shutting down)."""
        for instance in list(self.instances.values()):
            if instance.runner is not None and not instance.runner.done():
                instance.runner.cancel()
        await asyncio.gather(*(i.runner for i in self.instances.values() if i.runner), return_exceptions=True)

    # -- orchestration loop --------------------------------------------------------------------------------
    async def _drive(self, instance: Instance) -> None:
        try:
            await self._run_generations(instance)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a harness or determinism failure: the instance fails, like in DTFx
            log.exception("orchestration %s failed in the runtime", instance.instance_id)
            instance.status, instance.error = "Failed", f"{type(exc).__name__}: {exc}"
        finally:
            instance.updated = self.now()
            if instance.status not in RUNNING_STATES:
                instance.done.set()

    async def _run_generations(self, instance: Instance) -> None:
        fn = self.index.orchestrator(instance.name)
        for _generation in range(self.options.max_generations):
            instance.status = "Running"
            start = self.now()
            instance.history = [h.orchestrator_started(start),
                                h.execution_started(start, instance.name, instance.input_json)]
            next_input = await self._run_execution(instance, fn)
            if next_input is None:
                return
            instance.status, instance.input_json = "ContinuedAsNew", next_input
        raise RuntimeError(f"orchestration {instance.instance_id}: more than {self.options.max_generations} "
                           "continue_as_new generations")

    async def _run_execution(self, instance: Instance, fn: Any) -> str | None:
        """Run one execution to its end; returns the next input if it continued as new."""
        in_flight: dict[int | str, asyncio.Task[None]] = {}
        completions: asyncio.Queue[_Completion] = asyncio.Queue()
        previous: list[dict[str, Any]] = []
        try:
            for _ in range(self.options.max_episodes):
                episode = self._replay(instance, fn)
                check_determinism(previous, episode.actions, instance.instance_id)
                previous = episode.actions
                instance.custom_status, instance.updated = episode.custom_status, self.now()
                if episode.failed:
                    instance.status, instance.error = "Failed", episode.error
                    instance.history.append(_execution_end(h.EventType.EXECUTION_FAILED, self.now(), episode.error))
                    return None
                if episode.done:
                    if episode.actions and episode.actions[-1].get("actionType") == 4:
                        return str(episode.actions[-1]["input"])
                    instance.status, instance.output = "Completed", episode.output
                    instance.history.append(_execution_end(h.EventType.EXECUTION_COMPLETED, self.now(),
                                                           json.dumps(episode.output)))
                    return None
                moment = self.now()
                for work in episode.pending:
                    if work.task_id in in_flight:
                        continue
                    instance.history.extend(self._scheduling_events(instance, work, moment))
                    in_flight[work.task_id] = asyncio.create_task(self._perform(instance, work, completions))
                instance.history.append(h.orchestrator_completed(moment))
                if not in_flight:
                    raise NonDeterminismError(
                        f"orchestration {instance.instance_id} is waiting but nothing is scheduled")
                await self._next_batch(instance, in_flight, completions)
            raise RuntimeError(f"orchestration {instance.instance_id}: more than {self.options.max_episodes} episodes")
        finally:
            for task in in_flight.values():
                task.cancel()

    def _replay(self, instance: Instance, fn: Any) -> Episode:
        episode = run_episode(fn, instance.instance_id, instance.history, instance.input_json, instance.parent_id)
        metrics = instance.metrics
        metrics.episodes += 1
        metrics.replay_seconds += episode.seconds
        metrics.max_replay_seconds = max(metrics.max_replay_seconds, episode.seconds)
        metrics.max_state_bytes = max(metrics.max_state_bytes, episode.state_bytes)
        return episode

    async def _next_batch(self, instance: Instance, in_flight: dict[int | str, asyncio.Task[None]],
                          completions: asyncio.Queue[_Completion]) -> None:
        """Wait for at least one completion, then fold every one already there (up to a batch) into an episode."""
        batch = [await completions.get()]
        while len(batch) < self.options.max_batch and not completions.empty():
            batch.append(completions.get_nowait())
        if self.options.shuffle_seed is not None:  # real completions race; orchestrators must not care
            self._random.shuffle(batch)
            keep = self._random.randint(1, len(batch))
            for late in batch[keep:]:
                completions.put_nowait(late)
            batch = batch[:keep]
        for done in batch:
            if done.fire_at is not None:
                self._advance_to(done.fire_at)
        h.mark_played(instance.history)
        moment = self.now()
        instance.history.append(h.orchestrator_started(moment))
        for done in batch:
            in_flight.pop(done.task_id, None)
            instance.history.extend(done.events)

    def _scheduling_events(self, instance: Instance, work: PendingWork, moment: datetime) -> list[h.Event]:
        if isinstance(work.task_id, str):
            return []
        if work.kind == "activity":
            return [h.task_scheduled(moment, work.task_id, work.name, work.input_json)]
        if work.kind == "sub_orchestration":
            child_id = self._child_id(instance, work)
            return [h.sub_orchestration_created(moment, work.task_id, work.name, child_id, work.input_json)]
        if work.kind == "timer":
            return [h.timer_created(moment, work.task_id, self._fire_at(work, moment))]
        return []

    @staticmethod
    def _child_id(instance: Instance, work: PendingWork) -> str:
        return work.instance_id or f"{instance.instance_id}:{work.task_id:04X}"

    @staticmethod
    def _fire_at(work: PendingWork, moment: datetime) -> datetime:
        if work.fire_at is not None:
            return work.fire_at
        return moment + timedelta(milliseconds=work.retry_interval_ms or 0)

    async def _perform(self, instance: Instance, work: PendingWork, completions: asyncio.Queue[_Completion]) -> None:
        try:
            await self._perform_unguarded(instance, work, completions)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a runtime bug must fail the task, never leave the orchestration waiting
            log.exception("local runtime failed to perform task %s of %s", work.task_id, instance.instance_id)
            if isinstance(work.task_id, int):
                fail = h.sub_orchestration_failed if work.kind == "sub_orchestration" else h.task_failed
                event = fail(self.now(), work.task_id, f"{type(exc).__name__}: {exc}", "local runtime")
                await completions.put(_Completion(work.task_id, [event]))

    async def _perform_unguarded(self, instance: Instance, work: PendingWork,
                                 completions: asyncio.Queue[_Completion]) -> None:
        moment = self.now()
        if work.kind == "activity":
            assert isinstance(work.task_id, int)
            event = await self._run_activity(instance, work)
            await completions.put(_Completion(work.task_id, [event]))
        elif work.kind == "timer":
            assert isinstance(work.task_id, int)
            fire_at = self._fire_at(work, self._scheduled_at(instance, work.task_id) or moment)
            if not self.options.virtual_timers:
                await asyncio.sleep(max(0.0, (fire_at - self.now()).total_seconds()))
            await completions.put(_Completion(work.task_id, [h.timer_fired(fire_at, work.task_id, fire_at)], fire_at))
        elif work.kind == "sub_orchestration":
            assert isinstance(work.task_id, int)
            event = await self._run_child(instance, work)
            await completions.put(_Completion(work.task_id, [event]))
        else:
            name, data = await _wait_event(instance, work.name)
            await completions.put(_Completion(work.task_id, [h.event_raised(self.now(), name, data)]))

    @staticmethod
    def _scheduled_at(instance: Instance, task_id: int) -> datetime | None:
        for event in reversed(instance.history):
            if event["EventType"] == h.EventType.TIMER_CREATED and event["EventId"] == task_id:
                return datetime.fromisoformat(event["Timestamp"].replace("Z", "+00:00"))
        return None

    async def _run_activity(self, instance: Instance, work: PendingWork) -> h.Event:
        assert isinstance(work.task_id, int)
        instance.metrics.activities += 1
        try:
            activity = self.index.activity(work.name)
        except UnknownFunctionError as exc:
            return h.task_failed(self.now(), work.task_id, str(exc), "")
        key = (work.name, work.input_json)
        while True:
            self._deliveries[key] = delivery = self._deliveries.get(key, 0) + 1
            instance.metrics.deliveries += 1
            try:
                async with self._pool:
                    result_json = await asyncio.wait_for(activity.invoke(work.input_json),
                                                         self.options.activity_timeout)
            except TimeoutError:
                reason = f"Timeout: activity {work.name} ran longer than {self.options.activity_timeout}s"
                return h.task_failed(self.now(), work.task_id, reason, "")
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                return h.task_failed(self.now(), work.task_id, reason, traceback.format_exc(limit=5))
            redeliver = self.options.redeliver
            decoded = json.loads(work.input_json) if work.input_json is not None else None
            if redeliver is not None and redeliver(work.name, decoded, delivery):
                log.info("activity %s: result of delivery %d lost, delivering again", work.name, delivery)
                continue
            return h.task_completed(self.now(), work.task_id, result_json)

    async def _run_child(self, instance: Instance, work: PendingWork) -> h.Event:
        assert isinstance(work.task_id, int)
        child_id = self._child_id(instance, work)
        try:
            await self.start_new(work.name, child_id, work.input_json, parent_id=instance.instance_id)
        except (UnknownFunctionError, InstanceExistsError) as exc:
            return h.sub_orchestration_failed(self.now(), work.task_id, str(exc), "")
        child = await self.wait(child_id)
        if child.status == "Completed":
            return h.sub_orchestration_completed(self.now(), work.task_id, json.dumps(child.output))
        return h.sub_orchestration_failed(self.now(), work.task_id, child.error or child.status, child.status)


async def _wait_event(instance: Instance, name: str) -> tuple[str, str | None]:
    while True:
        event_name, data = await instance.events.get()
        if event_name == name:
            return event_name, data


def _execution_end(kind: h.EventType, moment: datetime, result: str | None) -> h.Event:
    return {"EventType": int(kind), "EventId": -1, "IsPlayed": False, "Timestamp": h.timestamp(moment),
            "Result": result}
