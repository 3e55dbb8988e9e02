"""The plan's census reaches the partition activities: `fresh: true` for the streams it names and no other,
through single partitions, groups, chunks, lanes and continue-as-new generations; re-run passes never carry it.
Driven through the real SDK by the local Durable host with simulated engine activities."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import function_app
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime, RuntimeOptions
from localrun.simulated import SimulatedTenant, partition
from orchestrators import names
from orchestrators.plan import SyncPlan
from shared.contracts import PartitionResult, RunInfo

TENANT = "00000000-0000-0000-0000-0000000000ac"
STREAMS = ["users", "groups", "mail_messages", "contacts", "drive_items"]
FRESH = ["groups", "mail_messages", "drive_items"]
# Lanes of 3 parents and generations of 2 partitions: every chunk has lanes, lanes continue as new.
LIMITS = {"partitions_in_flight": 3, "chunks_in_flight": 2, "partitions_per_generation": 2, "parents_per_lane": 3,
          "reruns": 1, "rerun_delay_seconds": 5}
FLAKY = ("mail_messages", "user-000004")


@dataclass
class CensusTenant(SimulatedTenant):
    """Plans with a census and records the `fresh` flag of every partition attempt."""

    fresh_seen: list[tuple[str, str | None, bool]] = field(default_factory=list)

    def plan_sync(self, run: RunInfo) -> SyncPlan:
        plan = super().plan_sync(run)
        plan["fresh"] = list(FRESH)
        return plan

    async def sync_partition(self, request: dict[str, Any]) -> PartitionResult:
        self.fresh_seen.append((request["stream"], request["parent_id"], request.get("fresh", False)))
        assert "fresh" not in request or request["fresh"] is True  # the flag is sent only when it is true
        return await super().sync_partition(request)


def flaky(stream: str, parent: str | None, attempt: int) -> PartitionResult | None:
    if (stream, parent) == FLAKY and attempt == 1:
        return partition(stream, parent, "failed", error_code="CheckpointConflict", retryable=True)
    return None


async def test_fresh_reaches_exactly_the_census_streams_and_reruns_read_their_checkpoint() -> None:
    users = [f"user-{i:06d}" for i in range(8)]
    tenant = CensusTenant(parents={"users": users, "drives": [f"drive-{u}" for u in users]}, streams=STREAMS,
                          chunk_size=5, behaviour=flaky)
    index = FunctionIndex.from_app(function_app.app).with_activities(tenant.activities())
    runtime = DurableRuntime(index, RuntimeOptions())
    request = {"tenant_id": TENANT, "trigger": "local", "overrides": {}, "limits": LIMITS}
    done = await runtime.wait(await runtime.start_new(names.SYNC_RUN, names.run_instance_id(TENANT),
                                                      json.dumps(request)))
    assert done.status == "Completed", done.error
    assert done.output["failed"] == 0

    attempts: dict[tuple[str, str | None], list[bool]] = {}
    for stream, parent, fresh in tenant.fresh_seen:
        attempts.setdefault((stream, parent), []).append(fresh)
    drives = tenant.parents["drives"]
    expected = {("users", None), ("groups", None)} | {(s, u) for s in ("mail_messages", "contacts") for u in users}
    expected |= {("drive_items", d) for d in drives}
    assert set(attempts) == expected
    # The first attempt of each partition carries the census; the re-run pass after a failure does not.
    assert {key: flags[0] for key, flags in attempts.items()} == {key: key[0] in FRESH for key in expected}
    assert attempts[FLAKY] == [True, False]
    assert all(len(flags) == 1 for key, flags in attempts.items() if key != FLAKY)
    # Lanes continued as new and still carried the group's share of the census in their last generation.
    last_inputs = [json.loads(i.input_json or "{}") for i in runtime.instances.values()
                   if i.name == names.SYNC_PARENT_CHUNK]
    continued = [spec for spec in last_inputs if spec.get("offset")]
    assert continued and all(spec["fresh"] == [s for s in spec["streams"] if s in FRESH] for spec in continued)
    assert {spec["parent_stream"] for spec in continued} == {"users", "drives"}


async def test_a_plan_without_a_census_sends_no_fresh_flag() -> None:
    """Plans from before the census (an orchestration in flight across a deployment) replay unchanged."""
    tenant = SimulatedTenant.users(4, ["users", "mail_messages"], chunk_size=5)
    seen: list[dict[str, Any]] = []
    original = tenant.sync_partition

    async def record(request: dict[str, Any]) -> PartitionResult:
        seen.append(request)
        return await original(request)

    activities = {**tenant.activities(), names.SYNC_PARTITION: record}
    runtime = DurableRuntime(FunctionIndex.from_app(function_app.app).with_activities(activities), RuntimeOptions())
    request = {"tenant_id": TENANT, "trigger": "local", "overrides": {}}
    done = await runtime.wait(await runtime.start_new(names.SYNC_RUN, names.run_instance_id(TENANT),
                                                      json.dumps(request)))
    assert done.status == "Completed", done.error
    assert len(seen) == 1 + 4 and all("fresh" not in r for r in seen)
