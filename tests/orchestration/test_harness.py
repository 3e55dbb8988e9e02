# mypy: disable-error-code="untyped-decorator"
"""Smoke tests of the local Durable host against the real azure-functions-durable SDK.

They pin the SDK behaviours the runtime relies on (task ids, retry timers, compound actions, sub-orchestrations,
continue_as_new, custom status): an SDK upgrade that changes them fails here first.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from localrun import history as h
from localrun.registry import FunctionIndex, UnknownFunctionError
from localrun.replay import run_episode
from localrun.runtime import DurableRuntime, InstanceExistsError, RuntimeOptions

app = df.DFApp()
calls: dict[str, int] = {}


@app.activity_trigger(input_name="payload")
def echo(payload: Any) -> Any:
    return {"echo": payload}


@app.activity_trigger(input_name="n")
async def square(n: int) -> int:
    return n * n


@app.activity_trigger(input_name="key")
def flaky(key: str) -> str:
    calls[key] = calls.get(key, 0) + 1
    if calls[key] < 3:
        raise ConnectionError(f"attempt {calls[key]} of {key} dropped")
    return f"{key} after {calls[key]}"


@app.activity_trigger(input_name="payload")
def boom(payload: Any) -> None:
    raise ValueError("no such mailbox")


@app.activity_trigger(input_name="seconds")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finished"


@app.orchestration_trigger(context_name="context")
def patient(context: df.DurableOrchestrationContext):
    try:
        return (yield context.call_activity("slow", 30))
    except Exception as exc:
        return str(exc).splitlines()[0]


@app.orchestration_trigger(context_name="context")
def sequence(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("echo", "a")
    second = yield context.call_activity("square", 7)
    context.set_custom_status({"stage": "done", "uuid": context.new_uuid()})
    return [first, second, context.current_utc_datetime.isoformat()]


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    n = context.get_input()
    results = yield context.task_all([context.call_activity("square", i) for i in range(n)])
    return sum(results)


@app.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=60_000, max_number_of_attempts=context.get_input())
    try:
        value = yield context.call_activity_with_retry("flaky", options, context.instance_id)
    except Exception as exc:
        return {"failed": str(exc)}
    return {"value": value, "at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def catches(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("boom", None)
    except Exception as exc:
        return {"caught": str(exc).splitlines()[0]}
    return {"caught": None}


@app.orchestration_trigger(context_name="context")
def fails(context: df.DurableOrchestrationContext):
    yield context.call_activity("boom", None)
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    children = [context.call_sub_orchestrator("fan_out", n, instance_id=f"{context.instance_id}:c{n}")
                for n in (3, 4)]
    totals = yield context.task_all(children)
    anonymous = yield context.call_sub_orchestrator("sequence")
    return {"totals": totals, "anonymous": anonymous[1]}


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext):
    fire_at = context.current_utc_datetime + timedelta(hours=2)
    yield context.create_timer(fire_at)
    return context.current_utc_datetime >= fire_at


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    n = context.get_input()
    yield context.call_activity("square", n)
    if n < 3:
        context.continue_as_new(n + 1)
        return None
    return n


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    decision = yield context.wait_for_external_event("approve")
    return decision


flip = {"value": 0}


@app.orchestration_trigger(context_name="context")
def nondeterministic(context: df.DurableOrchestrationContext):
    flip["value"] += 1  # state outside history: forbidden in orchestrators
    yield context.call_activity("square", flip["value"])
    yield context.call_activity("square", 0)
    return None


@pytest.fixture
def runtime():
    return DurableRuntime(FunctionIndex.from_app(app), RuntimeOptions(max_concurrent_activities=4))


async def run(runtime: DurableRuntime, name: str, input_: Any = None, instance_id: str | None = None):
    iid = await runtime.start_new(name, instance_id, json.dumps(input_) if input_ is not None else None)
    return await runtime.wait(iid)


async def test_sequence_runs_activities_through_the_worker_converters(runtime):
    done = await run(runtime, "sequence")
    assert done.status == "Completed", done.error
    assert done.output[:2] == [{"echo": "a"}, 49]
    assert done.custom_status["stage"] == "done"
    types = [e["EventType"] for e in done.history]
    assert types[:2] == [h.EventType.ORCHESTRATOR_STARTED, h.EventType.EXECUTION_STARTED]
    assert types.count(h.EventType.TASK_SCHEDULED) == 2 and types.count(h.EventType.TASK_COMPLETED) == 2
    assert types[-1] == h.EventType.EXECUTION_COMPLETED
    assert done.metrics.episodes == 3


async def test_fan_out_is_one_compound_action_and_results_keep_task_order(runtime):
    done = await run(runtime, "fan_out", 25)
    assert done.status == "Completed", done.error
    assert done.output == sum(i * i for i in range(25))
    episode = run_episode(runtime.index.orchestrator("fan_out"), "x", done.history[:2], "25")
    assert [a["actionType"] for a in episode.state["actions"][0]] == [12]
    assert len(episode.state["actions"][0][0]["compoundActions"]) == 25
    assert [w.task_id for w in episode.pending] == list(range(25))


async def test_retry_schedules_hidden_timers_and_succeeds_on_third_attempt(runtime):
    done = await run(runtime, "retrying", 5, instance_id="retry-ok")
    assert done.status == "Completed", done.error
    assert done.output["value"] == "retry-ok after 3"
    types = [e["EventType"] for e in done.history]
    assert types.count(h.EventType.TASK_FAILED) == 2
    assert types.count(h.EventType.TIMER_FIRED) == 2
    assert types.count(h.EventType.TASK_SCHEDULED) == 3


async def test_retry_exhausted_surfaces_the_last_failure(runtime):
    done = await run(runtime, "retrying", 2, instance_id="retry-exhausted")
    assert done.status == "Completed", done.error
    assert "attempt 2 of retry-exhausted dropped" in done.output["failed"]


async def test_activity_failure_is_catchable_and_uncaught_fails_the_instance(runtime):
    caught = await run(runtime, "catches")
    assert caught.output == {"caught": "ValueError: no such mailbox "}
    failed = await run(runtime, "fails")
    assert failed.status == "Failed"
    assert "no such mailbox" in failed.error
    assert failed.history[-1]["EventType"] == h.EventType.EXECUTION_FAILED


async def test_sub_orchestrations_run_as_their_own_instances(runtime):
    done = await run(runtime, "parent", instance_id="p1")
    assert done.status == "Completed", done.error
    assert done.output["totals"] == [0 + 1 + 4, 0 + 1 + 4 + 9]
    assert done.output["anonymous"] == 49
    assert runtime.get("p1:c3").parent_id == "p1"
    assert runtime.get("p1:0002").name == "sequence"


async def test_virtual_timer_moves_the_orchestration_clock(runtime):
    done = await run(runtime, "sleeper")
    assert done.output is True
    assert [e["EventType"] for e in done.history].count(h.EventType.TIMER_FIRED) == 1


async def test_continue_as_new_restarts_with_fresh_history(runtime):
    done = await run(runtime, "counter", 0, instance_id="loop")
    assert done.status == "Completed" and done.output == 3
    assert json.loads(done.history[1]["Input"]) == 3


async def test_external_event_resumes_the_orchestrator(runtime):
    iid = await runtime.start_new("approval", "ask")
    await runtime.raise_event(iid, "approve", {"by": "admin"})
    done = await runtime.wait(iid)
    assert done.output == {"by": "admin"}


async def test_running_instance_id_cannot_be_reused(runtime):
    iid = await runtime.start_new("approval", "single")
    with pytest.raises(InstanceExistsError):
        await runtime.start_new("approval", "single")
    await runtime.terminate(iid, "test over")
    assert runtime.get(iid).status == "Terminated"
    await runtime.start_new("sequence", "single")
    assert (await runtime.wait("single")).status == "Completed"


async def test_nondeterministic_orchestrator_is_failed(runtime):
    done = await run(runtime, "nondeterministic")
    assert done.status == "Failed"
    assert "NonDeterminismError" in done.error


async def test_unknown_names_are_rejected(runtime):
    with pytest.raises(UnknownFunctionError):
        await runtime.start_new("nope")
    with pytest.raises(UnknownFunctionError):
        runtime.index.with_activities({"nope": lambda x: x})


async def test_replaying_a_final_history_gives_the_same_actions(runtime):
    done = await run(runtime, "parent", instance_id="p2")
    fn = runtime.index.orchestrator("parent")
    first = run_episode(fn, "p2", done.history[:-1], None)
    second = run_episode(fn, "p2", done.history[:-1], None)
    assert first.done and first.output == done.output
    assert first.state == second.state


async def test_lost_activity_results_are_delivered_again():
    lost: list[int] = []

    def redeliver(name: str, payload: Any, delivery: int) -> bool:
        if name == "square" and payload == 2 and delivery == 1:
            lost.append(delivery)
            return True
        return False

    runtime = DurableRuntime(FunctionIndex.from_app(app), RuntimeOptions(redeliver=redeliver))
    done = await run(runtime, "fan_out", 3)
    assert done.output == 5 and lost == [1]
    assert done.metrics.deliveries == done.metrics.activities + 1


async def test_an_activity_over_its_time_limit_fails_instead_of_hanging():
    runtime = DurableRuntime(FunctionIndex.from_app(app), RuntimeOptions(activity_timeout=0.2))
    done = await run(runtime, "patient")
    assert done.status == "Completed"
    assert done.output.startswith("Timeout: activity slow ran longer than 0.2s")


async def test_seeded_shuffle_reorders_and_splits_completions():
    runtime = DurableRuntime(FunctionIndex.from_app(app), RuntimeOptions(shuffle_seed=5))
    done = await run(runtime, "fan_out", 12)
    assert done.output == sum(i * i for i in range(12))
    completed = [e["TaskScheduledId"] for e in done.history if e["EventType"] == h.EventType.TASK_COMPLETED]
    assert sorted(completed) == list(range(12)) and completed != list(range(12))
    assert done.metrics.episodes > 3  # completions arrived over several episodes, not in one batch
