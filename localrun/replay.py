"""One orchestration episode through the real azure-functions-durable SDK: history in, actions and pending work out.

This is the exact call the Python worker makes for an orchestration trigger (`Orchestrator.handle` over a
`DurableOrchestrationContext` built from the extension's JSON), plus a read of the context's open tasks to learn
what the host would now have to do. The open-task read uses SDK internals, hence the exact pin of
azure-functions-durable and the smoke tests in tests/orchestration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from azure.durable_functions import DurableOrchestrationContext, Orchestrator
from azure.durable_functions.models.actions.CallActivityAction import CallActivityAction
from azure.durable_functions.models.actions.CallActivityWithRetryAction import CallActivityWithRetryAction
from azure.durable_functions.models.actions.CallSubOrchestratorAction import CallSubOrchestratorAction
from azure.durable_functions.models.actions.CallSubOrchestratorWithRetryAction import (
    CallSubOrchestratorWithRetryAction,
)
from azure.durable_functions.models.actions.CreateTimerAction import CreateTimerAction
from azure.durable_functions.models.actions.NoOpAction import NoOpAction
from azure.durable_functions.models.actions.WaitForExternalEventAction import WaitForExternalEventAction
from azure.durable_functions.models.Task import RetryAbleTask, TaskBase

from localrun import history as h

OrchestratorFn = Callable[[DurableOrchestrationContext], Generator[Any, Any, Any]]
WorkKind = Literal["activity", "timer", "sub_orchestration", "event"]

_OUT_OF_PROC = "\n\n$OutOfProcData$:"
# What the extension sends today (SchemaVersion V2 / V3), so actions come back as the host sees them.
UPPER_SCHEMA_VERSION = 1
UPPER_SCHEMA_VERSION_NEW = 2


class NonDeterminismError(RuntimeError):
    """The orchestrator produced different actions from the same history (DTFx fails the instance for this)."""


@dataclass(frozen=True, slots=True)
class PendingWork:
    """Something the orchestrator is waiting for that the host has not scheduled yet."""

    task_id: int | str
    kind: WorkKind
    name: str = ""
    input_json: str | None = None
    instance_id: str | None = None
    fire_at: datetime | None = None
    retry_interval_ms: int | None = None  # set for the hidden timer of a *_with_retry call


@dataclass(slots=True)
class Episode:
    """The SDK's answer for one episode."""

    state: dict[str, Any]
    done: bool
    failed: bool
    error: str | None
    output: Any
    custom_status: Any
    actions: list[dict[str, Any]]
    pending: list[PendingWork] = field(default_factory=list)
    seconds: float = 0.0
    state_bytes: int = 0


def context_json(instance_id: str, history: list[h.Event], input_json: str | None, parent_id: str | None) -> str:
    """The orchestration-trigger payload the extension sends to the Python worker (serialised with orjson: in
    Azure the host does this, so the local host should not bill the app's CPU for a slow encoder)."""
    return orjson.dumps({
        "history": history,
        "input": input_json,
        "instanceId": instance_id,
        "isReplaying": False,
        "parentInstanceId": parent_id,
        "upperSchemaVersion": UPPER_SCHEMA_VERSION,
        "upperSchemaVersionNew": UPPER_SCHEMA_VERSION_NEW,
    }).decode("utf-8")


def flatten_actions(actions: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every action in scheduling order, compound actions (task_all / task_any) expanded."""
    flat: list[dict[str, Any]] = []

    def walk(action: dict[str, Any]) -> None:
        children = action.get("compoundActions")
        if children is None:
            flat.append(action)
        else:
            for child in children:
                walk(child)

    for group in actions:
        for action in group:
            walk(action)
    return flat


def run_episode(
    fn: OrchestratorFn,
    instance_id: str,
    history: list[h.Event],
    input_json: str | None,
    parent_id: str | None = None,
) -> Episode:
    """Replay `history` through the SDK and report the resulting state and the work it now waits on."""
    payload = context_json(instance_id, history, input_json, parent_id)
    started = time.perf_counter()
    context = DurableOrchestrationContext.from_json(payload)
    try:
        state_json = Orchestrator(fn).handle(context)
        failed, error = False, None
    except Exception as exc:  # the SDK's way of reporting an orchestrator failure
        message = str(exc)
        if _OUT_OF_PROC not in message:
            raise
        error, state_json = message.split(_OUT_OF_PROC, 1)
        failed = True
    seconds = time.perf_counter() - started
    state: dict[str, Any] = orjson.loads(state_json)
    done = bool(state.get("isDone")) and not failed
    episode = Episode(
        state=state,
        done=done,
        failed=failed,
        error=error,
        output=state.get("output"),
        custom_status=state.get("customStatus"),
        actions=flatten_actions(state.get("actions", [])),
        seconds=seconds,
        state_bytes=len(state_json),
    )
    if not done and not failed:
        episode.pending = pending_work(context, h.scheduled_ids(history))
    return episode


def pending_work(context: DurableOrchestrationContext, already_scheduled: set[int]) -> list[PendingWork]:
    """Open tasks that the history has not scheduled yet, in task-id order (the order DTFx schedules them)."""
    work: list[PendingWork] = []
    for key, entry in list(context.open_tasks.items()):
        tasks = entry if isinstance(entry, list) else [entry]
        for task in tasks:
            if isinstance(key, str):
                work.append(PendingWork(task_id=key, kind="event", name=key))
            elif key not in already_scheduled:
                work.append(_describe(key, task))
    work.sort(key=lambda w: (isinstance(w.task_id, str), str(w.task_id) if isinstance(w.task_id, str) else w.task_id))
    return work


def _describe(task_id: int, task: TaskBase) -> PendingWork:
    action = task.action_repr
    if isinstance(action, list):  # replay schema V1 only; we always negotiate V3
        action = action[0]
    if isinstance(action, NoOpAction):
        parent = task.parent
        if not isinstance(parent, RetryAbleTask):
            raise RuntimeError(f"task {task_id}: internal no-op action outside a retry ({action.metadata})")
        if action.metadata == "-WithRetry timer":
            interval = parent.retry_options.first_retry_interval_in_milliseconds
            return PendingWork(task_id=task_id, kind="timer", retry_interval_ms=interval)
        # "rescheduled task": the retried call is the wrapped task's own action
        action = parent.actions[0] if isinstance(parent.actions, list) else parent.actions
    if isinstance(action, CallActivityAction | CallActivityWithRetryAction):
        return PendingWork(task_id=task_id, kind="activity", name=action.function_name, input_json=action.input_)
    if isinstance(action, CallSubOrchestratorAction | CallSubOrchestratorWithRetryAction):
        return PendingWork(task_id=task_id, kind="sub_orchestration", name=action.function_name,
                           input_json=action._input, instance_id=action.instance_id)
    if isinstance(action, CreateTimerAction):
        return PendingWork(task_id=task_id, kind="timer", fire_at=action.fire_at)
    if isinstance(action, WaitForExternalEventAction):
        return PendingWork(task_id=task_id, kind="event", name=action.external_event_name)
    raise NotImplementedError(f"task {task_id}: the local runtime does not execute {type(action).__name__}")


def check_determinism(previous: list[dict[str, Any]], current: list[dict[str, Any]], instance_id: str) -> None:
    """Actions of an earlier episode must replay identically, or in-flight instances would break in Azure."""
    for index, (before, now) in enumerate(zip(previous, current, strict=False)):
        if _identity(before) != _identity(now):
            raise NonDeterminismError(
                f"orchestration {instance_id}: action {index} changed on replay: {before!r} became {now!r}; "
                "orchestrators must derive every decision from their input and history"
            )
    if len(current) < len(previous):
        raise NonDeterminismError(
            f"orchestration {instance_id}: replay produced {len(current)} actions, history has {len(previous)}"
        )


def _identity(action: dict[str, Any]) -> tuple[Any, ...]:
    return (action.get("actionType"), action.get("functionName"), action.get("input"), action.get("instanceId"),
            action.get("fireAt"))
