"""This product in the race: the function app's own orchestrator and activities on the local Durable runtime
(`localrun.session.run_sync`), writing gzip JSON Lines block blobs to Azurite, in a process of its own so its
CPU time and peak RSS are its own.

    python -m bench.contenders.product ENV_FILE CONCURRENCY STREAMS [LIMITS_JSON]

CONCURRENCY plays host.json `maxConcurrentActivityFunctions`. LIMITS_JSON, when given, is the `limits` object a
starter may put in the run request (partitions_in_flight, chunks_in_flight, partitions_per_generation): the same
orchestrators, other fan-out settings, for tuning experiments.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.contenders.common import ContenderResult
from devstack.env import StackEnv
from localrun.session import run_sync
from localrun.settings import applied, stack_app_settings


async def sync(env: StackEnv, concurrency: int, streams: list[str], result: ContenderResult,
               limits: dict[str, Any] | None) -> None:
    report = (await run_sync([env.tenant_id], {"streams": streams}, concurrency=concurrency, limits=limits))[0]
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
    limits: dict[str, Any] | None = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
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
