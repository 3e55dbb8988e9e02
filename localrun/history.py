"""Durable history events as the Durable Functions extension hands them to the Python SDK.

Only the fields the SDK reads are produced (see HistoryEvent / TaskOrchestrationExecutor in
azure-functions-durable 1.7.0); values are JSON-native so a history can be dumped, measured and replayed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

Event = dict[str, Any]


class EventType(IntEnum):
    """`HistoryEventType` values of DTFx (the SDK's enum mirrors them)."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_RAISED = 15


SCHEDULING_EVENTS = frozenset(
    {EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED, EventType.TIMER_CREATED}
)


def timestamp(moment: datetime) -> str:
    """Render a moment the way DTFx serialises history timestamps (UTC, microseconds, `Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event(kind: EventType, moment: datetime, event_id: int = -1, **fields: Any) -> Event:
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False, "Timestamp": timestamp(moment), **fields}


def orchestrator_started(moment: datetime) -> Event:
    return _event(EventType.ORCHESTRATOR_STARTED, moment)


def orchestrator_completed(moment: datetime) -> Event:
    return _event(EventType.ORCHESTRATOR_COMPLETED, moment)


def execution_started(moment: datetime, name: str, input_json: str | None, version: str = "") -> Event:
    # The SDK reads `Version` unconditionally, so it must be present even when empty.
    return _event(EventType.EXECUTION_STARTED, moment, Name=name, Input=input_json, Version=version)


def task_scheduled(moment: datetime, task_id: int, name: str, input_json: str | None) -> Event:
    return _event(EventType.TASK_SCHEDULED, moment, task_id, Name=name, Input=input_json)


def task_completed(moment: datetime, task_id: int, result_json: str | None) -> Event:
    return _event(EventType.TASK_COMPLETED, moment, TaskScheduledId=task_id, Result=result_json)


def task_failed(moment: datetime, task_id: int, reason: str, details: str) -> Event:
    return _event(EventType.TASK_FAILED, moment, TaskScheduledId=task_id, Reason=reason, Details=details)


def sub_orchestration_created(
    moment: datetime, task_id: int, name: str, instance_id: str, input_json: str | None
) -> Event:
    return _event(EventType.SUB_ORCHESTRATION_CREATED, moment, task_id, Name=name, InstanceId=instance_id,
                  Input=input_json)


def sub_orchestration_completed(moment: datetime, task_id: int, result_json: str | None) -> Event:
    return _event(EventType.SUB_ORCHESTRATION_COMPLETED, moment, TaskScheduledId=task_id, Result=result_json)


def sub_orchestration_failed(moment: datetime, task_id: int, reason: str, details: str) -> Event:
    return _event(EventType.SUB_ORCHESTRATION_FAILED, moment, TaskScheduledId=task_id, Reason=reason,
                  Details=details)


def timer_created(moment: datetime, task_id: int, fire_at: datetime) -> Event:
    return _event(EventType.TIMER_CREATED, moment, task_id, FireAt=timestamp(fire_at))


def timer_fired(moment: datetime, task_id: int, fire_at: datetime) -> Event:
    return _event(EventType.TIMER_FIRED, moment, TimerId=task_id, FireAt=timestamp(fire_at))


def event_raised(moment: datetime, name: str, input_json: str | None) -> Event:
    return _event(EventType.EVENT_RAISED, moment, Name=name, Input=input_json)


def scheduled_ids(history: list[Event]) -> set[int]:
    """Task ids the history already scheduled: the SDK numbers tasks, DTFx records them as EventIds."""
    return {event["EventId"] for event in history if event["EventType"] in SCHEDULING_EVENTS}


def mark_played(history: list[Event]) -> None:
    """Flag everything so far as replayed, as DTFx does before appending a new episode."""
    for event in history:
        event["IsPlayed"] = True


def size_bytes(history: list[Event]) -> int:
    """Serialised size: what the Azure Storage provider stores and reloads for every replay."""
    return len(json.dumps(history, separators=(",", ":")).encode())
