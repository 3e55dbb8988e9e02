"""This product in the race: the function app's own orchestrator and activities on the local Durable runtime
(`localrun.session.run_sync`), writing gzip JSON Lines block blobs to Azurite, in a process of its own so its
CPU time and peak RSS are its own.

    python -m bench.contenders.product ENV_FILE CONCURRENCY STREAMS [LIMITS_JSON]

LIMITS_JSON, when given, is the `limits` object a starter may put in the run request (partitions_in_flight,
chunks_in_flight, parents_per_round): the same orchestrators, other fan-out settings, for tuning experiments.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

import function_app
from activities import sync as activities
from bench.contenders.common import ContenderResult
from devstack.env import StackEnv
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime, RuntimeOptions
from localrun.session import RunReport, run_sync
from localrun.session import _report as session_report
from localrun.settings import applied, stack_app_settings
from orchestrators import names
from shared.config import load_settings
from shared.runtime import close_engines


async def run_with_limits(tenant_id: str, streams: list[str], concurrency: int, limits: dict[str, int]
                          ) -> RunReport:
    """`run_sync` with a `limits` object in the request (run_sync itself starts runs with the defaults)."""
    activities.settings.cache_clear()
    settings = load_settings()
    runtime = DurableRuntime(FunctionIndex.from_app(function_app.app),
                             RuntimeOptions(max_concurrent_activities=concurrency, virtual_timers=False,
                                            activity_timeout=3600.0))
    try:
        request = {"tenant_id": tenant_id, "trigger": "local", "overrides": {"streams": streams}, "limits": limits}
        instance_id = await runtime.start_new(names.SYNC_RUN, names.run_instance_id(tenant_id), json.dumps(request))
        await runtime.wait(instance_id)
        return await session_report(runtime.instances[instance_id], tenant_id, settings)
    finally:
        await runtime.close()
        await close_engines()


async def sync(env: StackEnv, concurrency: int, streams: list[str], result: ContenderResult,
               limits: dict[str, int] | None) -> None:
    if limits:
        report = await run_with_limits(env.tenant_id, streams, concurrency, limits)
    else:
        report = (await run_sync([env.tenant_id], {"streams": streams}, concurrency=concurrency))[0]
    if report.summary is None:
        raise RuntimeError(f"run {report.status}: {report.error}")
    for stream in report.streams:
        if stream.stream == "users":
            result.users = stream.records
        elif stream.stream == "mail_messages":
            result.records = stream.records
    if report.failures:
        first = report.failures[0]
        raise RuntimeError(f"{len(report.failures)} partitions failed, e.g. {first.get('stream')}: "
                           f"{first.get('error_code')} {first.get('error_message')}")


def main() -> None:
    env = StackEnv.load(Path(sys.argv[1]))
    concurrency = int(sys.argv[2])
    streams = sys.argv[3].split(",")
    limits: dict[str, int] | None = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
    logging.basicConfig(level=logging.ERROR)
    result = ContenderResult("this product" + (f" {json.dumps(limits)}" if limits else ""))
    settings = {**stack_app_settings(env), "OUTPUT_CONTAINER": f"race{int(time.time())}",
                "OUTPUT_FORMAT": "jsonl.gz", "SYNC_STREAMS": ",".join(streams)}
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        with applied(settings):
            profile_to = os.environ.get("BENCH_PROFILE")  # where to write a cProfile of the sync, if anywhere
            if profile_to:
                import cProfile

                with cProfile.Profile() as profiler:
                    asyncio.run(sync(env, concurrency, streams, result, limits))
                profiler.dump_stats(profile_to)
            else:
                asyncio.run(sync(env, concurrency, streams, result, limits))
    except Exception as exc:  # reported in the race table, not a traceback
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    result.finish(started, cpu_started).emit()


if __name__ == "__main__":
    main()
