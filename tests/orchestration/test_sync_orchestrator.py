"""The sync orchestrators, driven through the real SDK by the local Durable host with simulated engine activities."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

import function_app
from localrun import history as h
from localrun.registry import FunctionIndex
from localrun.replay import run_episode
from localrun.runtime import DurableRuntime, RuntimeOptions
from localrun.session import live_progress
from localrun.simulated import SimulatedTenant, partition
from orchestrators import names
from orchestrators.plan import plan_run
from shared.streams import CATALOG

TENANT = "00000000-0000-0000-0000-0000000000aa"


def demo_tenant(**kwargs) -> SimulatedTenant:
    users = ["u1", "u2", "u3"]
    parents = {"users": users, "groups": ["g1", "g2"], "teams": ["g1"], "chats": ["c1", "c2"],
               "drives": ["d1", "d2", "d3"], "directory_roles": ["r1"]}
    return SimulatedTenant(parents=parents, **kwargs)


def expected_partitions(tenant: SimulatedTenant) -> Counter[tuple[str, str | None]]:
    plan = plan_run(CATALOG, tenant.streams)
    want: Counter[tuple[str, str | None]] = Counter((s, None) for s in plan["single"])
    for group in plan["groups"]:
        for parent in tenant.parents.get(group["parent_stream"], []):
            for stream in group["streams"]:
                want[(stream, parent)] += 1
    return want


async def sync(tenant: SimulatedTenant, limits=None, overrides=None, **options):
    index = FunctionIndex.from_app(function_app.app).with_activities(tenant.activities())
    runtime = DurableRuntime(index, RuntimeOptions(**options))
    request = {"tenant_id": TENANT, "trigger": "local", "overrides": overrides or {}}
    if limits:
        request["limits"] = limits
    iid = await runtime.start_new(names.SYNC_RUN, names.run_instance_id(TENANT), json.dumps(request))
    done = await runtime.wait(iid)
    return runtime, done


async def test_every_partition_of_all_22_streams_is_run_once_and_reported():
    tenant = demo_tenant()
    _runtime, done = await sync(tenant)
    assert done.status == "Completed", done.error
    [results] = tenant.manifest_inputs
    assert Counter((r["stream"], r["parent_id"]) for r in results) == expected_partitions(tenant)
    assert {r["stream"] for r in results} == set(CATALOG)
    assert done.output["status"] == "succeeded" and done.output["partitions"] == len(results)
    status = done.custom_status
    assert status["phase"] == "finished"
    assert status["streams"]["mail_messages"] == {"total": 3, "done": 3, "ok": 3, "skipped": 0, "failed": 0,
                                                  "records": 9}
    assert status["groups"]["users"] == f"{done.instance_id}:users"


async def test_groups_wait_for_their_parent_stream_when_parents_come_from_the_run():
    tenant = demo_tenant(parents_from_run=True)
    await sync(tenant)
    order = [(kind, arg) for kind, arg in tenant.calls]
    position = {call: i for i, call in enumerate(order)}
    for stream in ("users", "groups", "teams", "chats", "directory_roles"):
        written = position[(names.SYNC_PARTITION, (stream, None))]
        assert written < position[(names.LIST_PARENTS, stream)], stream
    last_drive = max(i for i, (kind, arg) in enumerate(order) if kind == names.SYNC_PARTITION and arg[0] == "drives")
    assert last_drive < position[(names.LIST_PARENTS, "drives")]


async def test_groups_start_at_once_when_the_engine_lists_parents_from_graph():
    tenant = demo_tenant()
    await sync(tenant)
    position = {call: i for i, call in enumerate(tenant.calls)}
    last_mail = max(i for i, (kind, arg) in enumerate(tenant.calls)
                    if kind == names.SYNC_PARTITION and arg[0] == "mail_messages")
    assert position[(names.LIST_PARENTS, "drives")] < last_mail


async def test_large_fan_out_goes_through_chunks_lanes_and_generations_with_bounded_in_flight():
    tenant = SimulatedTenant.users(230, ["users", "mail_messages", "contacts"], chunk_size=50)
    runtime, done = await sync(tenant, limits={"partitions_in_flight": 7, "chunks_in_flight": 2,
                                               "parents_per_lane": 25, "partitions_per_generation": 20,
                                               "results_per_save": 7})
    assert done.status == "Completed", done.error
    assert done.output["partitions"] == 1 + 230 * 2
    group_id = f"{done.instance_id}:users"
    chunks = sorted(i for i in runtime.instances if i.startswith(group_id + ":") and i.count(":") == 2)
    assert chunks == [f"{group_id}:{n}" for n in range(5)]
    lanes = sorted(i for i in runtime.instances if i.startswith(group_id + ":") and i.count(":") == 3)
    assert lanes == [f"{group_id}:{n}:{lane}" for n in range(5) for lane in range(2)]
    for lane_id in lanes:
        assert _max_open_tasks(runtime.get(lane_id).history, "sync_partition") <= 7
    assert _max_open_sub_orchestrations(runtime.get(group_id).history) <= 2
    # a lane of 25 parents x 2 streams in generations of 10 parents, saving pieces of <= 7 records as it goes
    first = sorted(k for k in tenant.saved if k.startswith("users/00000-000-"))
    assert first == [f"users/00000-000-{n:05d}" for n in range(len(first))]
    assert all(len(tenant.saved[k]) <= 7 for k in tenant.saved)
    assert sum(len(tenant.saved[k]) for k in first) == 50
    assert len(first) == 3 + 3 + 2  # ceil(20 / 7) per generation of 10 parents, ceil(10 / 7) for the last 5
    assert sum(1 for kind, _ in tenant.calls if kind == names.READ_PARENT_CHUNK) == 5  # lanes carry their ids
    largest = max(len(i.history) for i in runtime.instances.values())
    assert largest < 20 * 2 * 3 + 40, "a generation's history must not grow with the chunk or the tenant"
    assert done.custom_status["streams"]["contacts"]["done"] == 230


async def test_a_slow_parent_does_not_hold_back_the_others():
    """No barrier: while one mailbox is still being read, every other partition of its chunk starts and
    finishes (a round-based fan-out would wait for it before starting the next parents)."""
    slow = ("mail_messages", "user-000001")
    tenant = SimulatedTenant.users(30, ["users", "mail_messages"], chunk_size=30, hold={slow})
    index = FunctionIndex.from_app(function_app.app).with_activities(tenant.activities())
    runtime = DurableRuntime(index, RuntimeOptions())
    request = {"tenant_id": TENANT, "trigger": "local", "overrides": {},
               "limits": {"partitions_in_flight": 3, "chunks_in_flight": 1, "partitions_per_generation": 100,
                          "parents_per_lane": 30}}
    iid = await runtime.start_new(names.SYNC_RUN, names.run_instance_id(TENANT), json.dumps(request))
    mail = [f"user-{i:06d}" for i in range(30)]

    def mail_done() -> int:
        chunk = runtime.get(f"{iid}:users:0")
        status = chunk.custom_status if chunk is not None else None
        return int(status["streams"]["mail_messages"]["done"]) if isinstance(status, dict) else 0

    for _ in range(3000):  # a barrier would stop at the slow parent's round, well short of 29
        if mail_done() == 29:
            break
        assert not runtime.instances[iid].done.is_set()
        await asyncio.sleep(0.01)
    assert mail_done() == 29
    assert tenant.in_flight == 1, "only the slow mailbox is still running"
    assert sum(1 for kind, key in tenant.calls if kind == names.SYNC_PARTITION and key[0] == "mail_messages") == 30
    tenant.release(slow)
    done = await runtime.wait(iid)
    assert done.status == "Completed", done.error
    [results] = tenant.manifest_inputs
    assert sorted(str(r["parent_id"]) for r in results if r["stream"] == "mail_messages") == mail
    await runtime.close()


async def test_crashed_activity_is_retried_and_a_partition_that_keeps_crashing_is_recorded_failed():
    def behaviour(stream, parent, attempt):
        if (stream, parent) == ("contacts", "u2") and attempt < 3:
            raise ConnectionResetError("worker lost")
        if (stream, parent) == ("calendar_events", "u1"):
            raise ConnectionResetError("worker lost again")
        return None

    tenant = demo_tenant(behaviour=behaviour)
    _runtime, done = await sync(tenant)
    assert done.status == "Completed", done.error
    [results] = tenant.manifest_inputs
    by_key = {(r["stream"], r["parent_id"]): r for r in results}
    assert by_key[("contacts", "u2")]["status"] == "ok"
    assert tenant.attempts[("contacts", "u2")] == 3
    lost = by_key[("calendar_events", "u1")]
    assert lost["status"] == "failed" and "worker lost again" in lost["error_message"]
    assert tenant.attempts[("calendar_events", "u1")] == 3
    assert Counter((r["stream"], r["parent_id"]) for r in results) == expected_partitions(tenant)
    assert done.output["status"] == "failed" and done.output["failed"] == 1


async def test_failed_and_skipped_outcomes_do_not_stop_the_fan_out():
    def behaviour(stream, parent, attempt):
        if stream == "mail_messages" and parent == "u1":
            return partition(stream, parent, "skipped", reason="MailboxNotEnabledForRESTAPI")
        if stream == "audit_logs_signins":
            return partition(stream, None, "failed", error_code="Authorization_RequestDenied",
                             error_message="missing AuditLog.Read.All")
        return None

    tenant = demo_tenant(behaviour=behaviour)
    _, done = await sync(tenant)
    assert done.status == "Completed", done.error
    assert done.output["skipped"] == 1 and done.output["failed"] == 1
    assert done.output["ok"] == sum(expected_partitions(tenant).values()) - 2
    assert done.custom_status["streams"]["audit_logs_signins"]["failed"] == 1


async def test_a_parent_listing_that_keeps_crashing_fails_only_its_streams():
    tenant = demo_tenant(list_failures={"groups"})
    _, done = await sync(tenant)
    assert done.status == "Completed", done.error
    [results] = tenant.manifest_inputs
    failed = sorted((r["stream"], r["reason"]) for r in results if r["status"] == "failed")
    assert failed == [("group_member", "ParentListingFailed"), ("group_owner", "ParentListingFailed")]
    assert tenant.calls.count((names.LIST_PARENTS, "groups")) == 3
    assert sum(1 for r in results if r["stream"] == "team_member") == 1


async def test_overrides_choose_the_streams():
    tenant = demo_tenant()
    _, _done = await sync(tenant, overrides={"streams": ["users", "drive_items"]})
    [results] = tenant.manifest_inputs
    assert sorted({r["stream"] for r in results}) == ["drive_items", "users"]
    assert sum(1 for r in results if r["stream"] == "drive_items") == 3


async def test_final_histories_replay_to_the_same_actions_and_output():
    tenant = demo_tenant()
    runtime, _done = await sync(tenant)
    index = runtime.index
    for instance in runtime.instances.values():
        history = [e for e in instance.history if e["EventType"] != h.EventType.EXECUTION_COMPLETED]
        fn = index.orchestrator(instance.name)
        first = run_episode(fn, instance.instance_id, history, instance.input_json, instance.parent_id)
        second = run_episode(fn, instance.instance_id, history, instance.input_json, instance.parent_id)
        assert first.done, instance.instance_id
        assert first.state == second.state
        assert first.output == instance.output


async def test_run_id_and_start_time_come_from_the_orchestration_context():
    tenant = demo_tenant()
    _runtime, done = await sync(tenant)
    [(_, run_id)] = [c for c in tenant.calls if c[0] == names.PLAN_SYNC]
    assert done.output["run_id"] == run_id
    started = done.history[0]["Timestamp"]
    plan_input = json.loads(next(e for e in done.history if e.get("Name") == names.PLAN_SYNC)["Input"])
    assert plan_input["started_at"][:19] == started[:19]


def _max_open_tasks(history: list[dict[str, Any]], name: str) -> int:
    open_ids: set[int] = set()
    scheduled = {}
    peak = 0
    for event in history:
        if event["EventType"] == h.EventType.TASK_SCHEDULED and event["Name"] == name:
            scheduled[event["EventId"]] = True
            open_ids.add(event["EventId"])
        elif event["EventType"] in (h.EventType.TASK_COMPLETED, h.EventType.TASK_FAILED):
            open_ids.discard(event["TaskScheduledId"])
        peak = max(peak, len(open_ids))
    assert scheduled, f"no {name} in history"
    return peak


def _max_open_sub_orchestrations(history: list[dict[str, Any]]) -> int:
    open_ids: set[int] = set()
    peak = 0
    for event in history:
        if event["EventType"] == h.EventType.SUB_ORCHESTRATION_CREATED:
            open_ids.add(event["EventId"])
        elif event["EventType"] in (h.EventType.SUB_ORCHESTRATION_COMPLETED, h.EventType.SUB_ORCHESTRATION_FAILED):
            open_ids.discard(event["TaskScheduledId"])
        peak = max(peak, len(open_ids))
    return peak


@pytest.mark.parametrize("name", names.ORCHESTRATORS)
def test_orchestrators_are_generators(name):
    index = FunctionIndex.from_app(function_app.app)
    import inspect

    assert inspect.isgeneratorfunction(index.orchestrator(name))


async def test_a_stream_wide_failure_is_not_repeated_for_every_parent():
    def behaviour(stream, parent, attempt):
        if stream == "mail_messages":
            return partition(stream, parent, "failed", error_code="ErrorAccessDenied", failure_scope="stream",
                             retryable=False, error_message="grant Mail.ReadBasic.All", request_id="r-1")
        return None

    tenant = SimulatedTenant.users(60, ["users", "mail_messages", "contacts"], chunk_size=50, behaviour=behaviour)
    _, done = await sync(tenant, limits={"partitions_in_flight": 4, "chunks_in_flight": 2,
                                         "partitions_per_generation": 20, "parents_per_lane": 50})
    assert done.status == "Completed", done.error
    [results] = tenant.manifest_inputs
    mail = [r for r in results if r["stream"] == "mail_messages"]
    assert len(mail) == 60 and all(r["status"] == "failed" and "Mail.ReadBasic.All" in r["error_message"]
                                   for r in mail)
    attempted = [key for kind, key in tenant.calls if kind == names.SYNC_PARTITION and key[0] == "mail_messages"]
    assert 1 <= len(attempted) <= 2 * 2, attempted  # at most the in-flight window, once per chunk
    assert sum(1 for r in mail if r.get("reason", "").startswith("not attempted")) == 60 - len(attempted)
    assert all(r["status"] == "ok" for r in results if r["stream"] == "contacts")
    assert done.output["failed"] == 60


def test_first_episodes_history_in_actions_out():
    """The run orchestrator's wire-level behaviour for hand-built histories (what the extension would send)."""
    from datetime import UTC, datetime, timedelta

    fn = FunctionIndex.from_app(function_app.app).orchestrator(names.SYNC_RUN)
    t0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    request = json.dumps({"tenant_id": TENANT, "trigger": "timer", "overrides": {}})
    history = [h.orchestrator_started(t0), h.execution_started(t0, names.SYNC_RUN, request)]
    first = run_episode(fn, "sync-x", history, request)
    [plan_call] = first.actions
    assert plan_call["actionType"] == 1 and plan_call["functionName"] == names.PLAN_SYNC
    assert plan_call["retryOptions"] == {"firstRetryIntervalInMilliseconds": 5000, "maxNumberOfAttempts": 3}
    run = json.loads(plan_call["input"])
    assert run["started_at"] == "2026-01-02T03:04:05Z" and run["trigger"] == "timer"
    assert first.custom_status["phase"] == "planning"

    plan = plan_run(CATALOG, CATALOG)
    t1 = t0 + timedelta(seconds=2)
    history += [h.task_scheduled(t0, 0, names.PLAN_SYNC, plan_call["input"]), h.orchestrator_completed(t0),
                h.orchestrator_started(t1), h.task_completed(t1, 0, json.dumps(plan))]
    second = run_episode(fn, "sync-x", history, request)
    fanned = second.actions[1:]
    partitions = [a for a in fanned if a["actionType"] == 1]
    groups = [a for a in fanned if a["actionType"] == 2]
    assert [json.loads(a["input"])["stream"] for a in partitions] == plan["single"]
    assert {a["instanceId"] for a in groups} == {f"sync-x:{g['parent_stream']}" for g in plan["groups"]}
    assert second.state["actions"][0][1]["actionType"] == 11  # one task_any over everything in flight
    assert second.custom_status["streams"]["users"]["total"] == 1
    assert json.loads(partitions[0]["input"])["run"]["run_id"] == run["run_id"]  # new_uuid is replay-stable


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_outcome_does_not_depend_on_completion_order_or_batching(seed):
    def behaviour(stream, parent, attempt):
        if (stream, parent) == ("contacts", "u2") and attempt == 1:
            raise ConnectionResetError("worker lost")
        if (stream, parent) == ("mail_messages", "u3"):
            return partition(stream, parent, "skipped", reason="MailboxNotEnabledForRESTAPI")
        return None

    tenant = demo_tenant(behaviour=behaviour)
    _, done = await sync(tenant, limits={"partitions_in_flight": 3, "chunks_in_flight": 1,
                                         "partitions_per_generation": 8, "results_per_save": 3},
                         shuffle_seed=seed)
    assert done.status == "Completed", done.error
    [results] = tenant.manifest_inputs
    assert Counter((r["stream"], r["parent_id"]) for r in results) == expected_partitions(tenant)
    assert (done.output["ok"], done.output["skipped"], done.output["failed"]) == (
        sum(expected_partitions(tenant).values()) - 1, 1, 0)


async def test_lanes_run_side_by_side_and_live_progress_counts_every_finished_partition():
    """A chunk's lanes all run at once: a mailbox held in one lane stops neither its own lane's other parents
    nor the other lanes; the run's live progress (what GET /api/syncs/{id} shows) adds finished lanes and the
    running lanes' own counters."""
    slow = ("mail_messages", "user-000003")
    tenant = SimulatedTenant.users(40, ["users", "mail_messages"], chunk_size=40, hold={slow})
    index = FunctionIndex.from_app(function_app.app).with_activities(tenant.activities())
    runtime = DurableRuntime(index, RuntimeOptions())
    request = {"tenant_id": TENANT, "trigger": "local", "overrides": {},
               "limits": {"partitions_in_flight": 2, "chunks_in_flight": 1, "partitions_per_generation": 100,
                          "parents_per_lane": 10}}
    iid = await runtime.start_new(names.SYNC_RUN, names.run_instance_id(TENANT), json.dumps(request))
    for _ in range(3000):
        mail = live_progress(runtime, iid).get("mail_messages")
        if mail is not None and mail["done"] == 39:
            break
        assert not runtime.instances[iid].done.is_set()
        await asyncio.sleep(0.01)
    progress = live_progress(runtime, iid)["mail_messages"]
    assert (progress["total"], progress["done"], progress["ok"]) == (40, 39, 39)
    chunk = runtime.instances[f"{iid}:users:0"]
    assert chunk.custom_status["lanes"] == [f"{iid}:users:0:0"], "only the slow mailbox's lane is running"
    tenant.release(slow)
    done = await runtime.wait(iid)
    assert done.status == "Completed", done.error
    assert done.custom_status["streams"]["mail_messages"]["done"] == 40
    assert live_progress(runtime, iid)["mail_messages"]["done"] == 40
    await runtime.close()


async def test_a_lane_that_fails_fails_its_chunk_and_the_other_lanes_results_are_kept():
    tenant = SimulatedTenant.users(30, ["users", "mail_messages"], chunk_size=30,
                                   save_failures={"users/00000-001-00000"})
    _, done = await sync(tenant, limits={"partitions_in_flight": 3, "chunks_in_flight": 1,
                                         "partitions_per_generation": 100, "parents_per_lane": 10})
    assert done.status == "Completed", done.error
    [results] = tenant.manifest_inputs
    mail = [r for r in results if r["stream"] == "mail_messages"]
    assert sorted(str(r["parent_id"]) for r in mail if r["status"] == "ok") == [
        f"user-{i:06d}" for i in (*range(10), *range(20, 30))]
    [lost] = [r for r in mail if r["status"] == "failed"]
    assert lost["reason"] == "ChunkFailed" and "lane 1" in lost["error_message"]
    assert done.output["status"] == "failed"
