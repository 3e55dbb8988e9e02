"""Replay cost of the real orchestrators at scale: `python -m localrun measure --users 1000 10000`.

Runs `sync_run` through the real SDK with simulated engine activities (no I/O), so the numbers are the
orchestration overhead alone: SDK replay time, episodes, and history size per instance.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import function_app
from localrun import history as h
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime, RuntimeOptions
from localrun.simulated import SimulatedTenant
from orchestrators import names

STREAMS = ["users", "mail_messages", "calendar_events", "contacts", "drives", "drive_items"]


@dataclass(frozen=True, slots=True)
class Measurement:
    users: int
    chunk_size: int
    partitions: int
    instances: int
    wall_seconds: float
    replay_seconds: float
    episodes: int
    max_episode_seconds: float
    max_history_events: int
    max_history_bytes: int
    run_history_bytes: int
    max_state_bytes: int

    def row(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


async def measure(users: int, chunk_size: int = 500, limits: dict[str, Any] | None = None) -> Measurement:
    """The orchestrators' replay cost and history sizes at `users` parents, with the default fan-out limits
    unless `limits` overrides some."""
    tenant = SimulatedTenant.users(users, STREAMS, chunk_size=chunk_size, records_per_partition=1)
    index = FunctionIndex.from_app(function_app.app).with_activities(tenant.activities())
    runtime = DurableRuntime(index, RuntimeOptions(max_concurrent_activities=64))
    request = {"tenant_id": "measure", "trigger": "local", "overrides": {}, "limits": dict(limits or {})}
    started = time.perf_counter()
    iid = await runtime.start_new(names.SYNC_RUN, "measure", json.dumps(request))
    done = await runtime.wait(iid)
    wall = time.perf_counter() - started
    if done.status != "Completed":
        raise RuntimeError(f"measurement run failed: {done.error}")
    instances = list(runtime.instances.values())
    return Measurement(
        users=users, chunk_size=chunk_size, partitions=done.output["partitions"], instances=len(instances),
        wall_seconds=wall,
        replay_seconds=sum(i.metrics.replay_seconds for i in instances),
        episodes=sum(i.metrics.episodes for i in instances),
        max_episode_seconds=max(i.metrics.max_replay_seconds for i in instances),
        max_history_events=max(len(i.history) for i in instances),
        max_history_bytes=max(h.size_bytes(i.history) for i in instances),
        run_history_bytes=h.size_bytes(done.history),
        max_state_bytes=max(i.metrics.max_state_bytes for i in instances),
    )
