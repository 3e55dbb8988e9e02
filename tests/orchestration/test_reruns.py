"""Re-run passes: a partition that failed with a transient error (its result says `retryable`) is run again after
a durable timer with a doubling delay, so a throttling window or a Key Vault outage longer than the engine's own
request retries does not fail the run. Driven through the real SDK by the local Durable host (virtual timers)."""

from __future__ import annotations

import json
from datetime import datetime

import function_app
from localrun import history as h
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime, RuntimeOptions
from localrun.simulated import SimulatedTenant, partition
from orchestrators import names, reruns

TENANT = "00000000-0000-0000-0000-0000000000ab"
LIMITS = {"partitions_in_flight": 4, "chunks_in_flight": 2, "partitions_per_generation": 10}


async def sync(tenant: SimulatedTenant, **limits):
    index = FunctionIndex.from_app(function_app.app).with_activities(tenant.activities())
    runtime = DurableRuntime(index, RuntimeOptions())
    request = {"tenant_id": TENANT, "trigger": "local", "overrides": {}, "limits": {**LIMITS, **limits}}
    iid = await runtime.start_new(names.SYNC_RUN, names.run_instance_id(TENANT), json.dumps(request))
    done = await runtime.wait(iid)
    assert done.status == "Completed", done.error
    [results] = tenant.manifest_inputs
    return runtime, done, {(r["stream"], r["parent_id"]): r for r in results}


def throttled(stream: str, parent: str | None):
    return partition(stream, parent, "failed", error_code="TooManyRequests", retryable=True,
                     error_message="throttled after 6 attempts")


def timer_delays(runtime: DurableRuntime) -> list[float]:
    """Seconds between each user timer's creation and its fire time, over every instance's history."""
    delays: list[float] = []
    for instance in runtime.instances.values():
        for event in instance.history:
            if event["EventType"] == h.EventType.TIMER_CREATED:
                created = datetime.fromisoformat(event["Timestamp"].replace("Z", "+00:00"))
                fire = datetime.fromisoformat(event["FireAt"].replace("Z", "+00:00"))
                delays.append(round((fire - created).total_seconds()))
    return delays


async def test_a_transient_failure_is_re_run_after_a_backoff_timer_and_counts_once():
    def behaviour(stream, parent, attempt):
        return throttled(stream, parent) if (stream, parent) == ("contacts", "user-000003") and attempt < 3 else None

    tenant = SimulatedTenant.users(12, ["users", "contacts", "mail_messages"], chunk_size=50, behaviour=behaviour)
    runtime, done, by_key = await sync(tenant, reruns=2, rerun_delay_seconds=30, partitions_per_generation=150)
    assert tenant.attempts[("contacts", "user-000003")] == 3
    assert by_key[("contacts", "user-000003")]["status"] == "ok" and by_key[("contacts", "user-000003")]["reruns"] == 2
    assert done.output["status"] == "succeeded" and done.output["failed"] == 0
    assert done.output["partitions"] == 1 + 12 * 2
    assert sorted(d for d in timer_delays(runtime) if d >= 30) == [30, 60]
    assert done.custom_status["streams"]["contacts"] == {"total": 12, "done": 12, "ok": 12, "skipped": 0,
                                                         "failed": 0, "records": sum(
                                                             r["records"] for (s, _), r in by_key.items()
                                                             if s == "contacts")}


async def test_a_partition_still_failing_after_every_pass_is_recorded_failed_with_its_passes():
    def behaviour(stream, parent, attempt):
        return throttled(stream, parent) if (stream, parent) == ("mail_messages", "user-000001") else None

    tenant = SimulatedTenant.users(4, ["users", "mail_messages"], chunk_size=50, behaviour=behaviour)
    _, done, by_key = await sync(tenant, reruns=2, rerun_delay_seconds=5)
    assert tenant.attempts[("mail_messages", "user-000001")] == 3
    lost = by_key[("mail_messages", "user-000001")]
    assert lost["status"] == "failed" and lost["reruns"] == 2 and lost["retryable"] is True
    assert done.output["status"] == "failed" and done.output["failed"] == 1


async def test_a_permanent_failure_is_never_asked_again():
    def behaviour(stream, parent, attempt):
        if stream == "mail_messages":
            return partition(stream, parent, "failed", error_code="ErrorAccessDenied", failure_scope="stream",
                             retryable=False, error_message="grant Mail.ReadBasic.All")
        return None

    tenant = SimulatedTenant.users(6, ["users", "mail_messages"], chunk_size=50, behaviour=behaviour)
    runtime, done, by_key = await sync(tenant, reruns=2, rerun_delay_seconds=5, partitions_in_flight=1)
    assert sum(n for (s, _), n in tenant.attempts.items() if s == "mail_messages") == 1
    assert not any("reruns" in r for r in by_key.values())
    assert [d for d in timer_delays(runtime) if d >= 5] == []
    assert done.output["failed"] == 6


async def test_a_transient_stream_wide_failure_is_asked_again_and_recovers():
    calls = {"n": 0}

    def behaviour(stream, parent, attempt):
        if stream == "contacts":
            calls["n"] += 1
            if calls["n"] <= 1:  # Key Vault down for the first call: every other parent is not attempted
                return partition(stream, parent, "failed", error_code="KeyVaultUnavailable", failure_scope="stream",
                                 retryable=True, error_message="Key Vault unavailable")
        return None

    tenant = SimulatedTenant.users(5, ["users", "contacts"], chunk_size=50, behaviour=behaviour)
    _, done, by_key = await sync(tenant, reruns=1, rerun_delay_seconds=5, partitions_in_flight=1)
    contacts = [r for (s, _), r in by_key.items() if s == "contacts"]
    assert len(contacts) == 5 and all(r["status"] == "ok" for r in contacts)
    assert done.output["status"] == "succeeded"


async def test_a_single_partition_stream_is_re_run_and_its_dependants_wait_for_the_last_outcome():
    def behaviour(stream, parent, attempt):
        return throttled(stream, parent) if stream == "audit_logs_signins" and attempt == 1 else None

    tenant = SimulatedTenant.users(3, ["users", "audit_logs_signins", "contacts"], chunk_size=50,
                                   behaviour=behaviour)
    runtime, done, by_key = await sync(tenant, reruns=1, rerun_delay_seconds=7)
    assert tenant.attempts[("audit_logs_signins", None)] == 2
    assert by_key[("audit_logs_signins", None)]["status"] == "ok"
    assert by_key[("audit_logs_signins", None)]["reruns"] == 1
    assert 7 in timer_delays(runtime)
    assert done.output["status"] == "succeeded" and done.custom_status["streams"]["audit_logs_signins"]["ok"] == 1


async def test_no_passes_when_re_runs_are_switched_off():
    def behaviour(stream, parent, attempt):
        return throttled(stream, parent) if (stream, parent) == ("contacts", "user-000000") else None

    tenant = SimulatedTenant.users(2, ["users", "contacts"], chunk_size=50, behaviour=behaviour)
    _, done, _by_key = await sync(tenant, reruns=0)
    assert tenant.attempts[("contacts", "user-000000")] == 1 and done.output["failed"] == 1


def test_backoff_doubles_from_the_configured_delay():
    assert [reruns.delay({"rerun_delay_seconds": 10}, a).total_seconds() for a in range(3)] == [10, 20, 40]
    assert reruns.passes({}) == reruns.DEFAULT_RERUNS and reruns.passes({"reruns": -1}) == 0
    assert reruns.rerunnable(partition("x", None, "failed", retryable=True))
    assert not reruns.rerunnable(partition("x", None, "failed"))
    assert not reruns.rerunnable(partition("x", None, "ok", retryable=True))
