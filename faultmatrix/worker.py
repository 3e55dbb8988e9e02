"""Activities in a separate worker process that can really be killed (SIGKILL), like a Functions worker dying.

The parent's Durable runtime sends each activity invocation to the current worker over stdin and reads the
result from stdout (one JSON object per line). When the worker dies, every invocation it held fails with
`WorkerDied`; the orchestrator's durable retry (`call_activity_with_retry`) schedules them again and the pool
starts a fresh worker. The child runs the app's real activities (`function_app`) with the parent's settings.

    python -m faultmatrix.worker    # spoken to by WorkerPool, not by people
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultmatrix.rss import PeakRss
from localrun.registry import Activity, FunctionIndex

REPO_ROOT = Path(__file__).resolve().parent.parent
STREAM_LIMIT = 64 * 1024 * 1024  # one line carries one activity's input or result


class WorkerDied(RuntimeError):
    """The worker process ended while it ran this activity (the host reports the invocation failed)."""


@dataclass(slots=True)
class _Worker:
    proc: asyncio.subprocess.Process
    pending: dict[int, asyncio.Future[str]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    stderr: asyncio.Task[None] | None = None
    memory: PeakRss | None = None


class WorkerPool:
    """One worker process at a time; `on_start(invocation)` lets a scenario watch what runs where."""

    def __init__(self, env: dict[str, str], log_path: Path,
                 on_start: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._env = env
        self._log_path = log_path
        self._on_start = on_start
        self._worker: _Worker | None = None
        self._lock = asyncio.Lock()
        self._next = 0
        self.started_workers = 0
        self.killed: list[int] = []
        self.probes: list[PeakRss] = []  # one per worker process started, in order

    @property
    def peak_rss(self) -> int:
        """The largest peak RSS (bytes) of any worker process this pool started, measured from outside."""
        return max((probe.peak for probe in self.probes), default=0)

    async def _ensure(self) -> _Worker:
        async with self._lock:
            if self._worker is not None and self._worker.proc.returncode is None:
                return self._worker
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "faultmatrix.worker", cwd=REPO_ROOT, env=self._env, limit=STREAM_LIMIT,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            memory = PeakRss(proc.pid)
            self.probes.append(memory)
            worker = _Worker(proc, memory=memory)
            worker.reader = asyncio.create_task(self._read(worker))
            worker.stderr = asyncio.create_task(self._drain_stderr(worker))
            self._worker = worker
            self.started_workers += 1
            return worker

    async def _drain_stderr(self, worker: _Worker) -> None:
        assert worker.proc.stderr is not None
        with self._log_path.open("ab") as log:
            while line := await worker.proc.stderr.readline():
                log.write(line)

    async def _read(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        try:
            while line := await worker.proc.stdout.readline():
                message = json.loads(line)
                future = worker.pending.get(message["id"])
                if message.get("event") == "started":
                    if self._on_start is not None:
                        self._on_start({**message, "pid": worker.proc.pid})
                    continue
                worker.pending.pop(message["id"], None)
                if future is None or future.done():
                    continue
                if "result" in message:
                    future.set_result(message["result"])
                else:
                    future.set_exception(RuntimeError(message.get("error", "activity failed in the worker")))
        finally:
            code = await worker.proc.wait()
            for future in worker.pending.values():
                if not future.done():
                    future.set_exception(WorkerDied(f"worker {worker.proc.pid} exited with {code} during the "
                                                    "activity"))
            worker.pending.clear()

    async def invoke(self, name: str, input_json: str | None) -> str:
        worker = await self._ensure()
        self._next += 1
        call_id = self._next
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        worker.pending[call_id] = future
        assert worker.proc.stdin is not None
        try:
            worker.proc.stdin.write(json.dumps({"id": call_id, "name": name, "input": input_json}).encode() + b"\n")
            await worker.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            worker.pending.pop(call_id, None)
            raise WorkerDied(f"worker {worker.proc.pid} is gone") from None
        return await future

    def kill(self) -> int | None:
        """SIGKILL the current worker (no cleanup of any kind runs in it); returns its pid."""
        worker = self._worker
        if worker is None or worker.proc.returncode is not None:
            return None
        if worker.memory is not None:
            worker.memory.stop()
        os.kill(worker.proc.pid, signal.SIGKILL)
        self.killed.append(worker.proc.pid)
        return worker.proc.pid

    async def close(self) -> None:
        worker = self._worker
        self._worker = None
        if worker is None:
            return
        if worker.memory is not None:
            worker.memory.stop()  # while the process lives: its high-water mark goes with it
        if worker.proc.returncode is None:
            assert worker.proc.stdin is not None
            worker.proc.stdin.close()
            try:
                await asyncio.wait_for(worker.proc.wait(), 15)
            except TimeoutError:
                worker.proc.kill()
                await worker.proc.wait()
        for task in (worker.reader, worker.stderr):
            if task is not None:
                with contextlib.suppress(Exception):
                    await task


def remote_index(index: FunctionIndex, pool: WorkerPool) -> FunctionIndex:
    """The same app, with every activity executed by the pool's worker process instead of in this process."""
    activities: dict[str, Activity] = {}
    for name, activity in index.activities.items():
        async def call(_name: str = name, _binding: str = activity.binding_name, **kwargs: Any) -> Any:
            result = await pool.invoke(_name, json.dumps(kwargs[_binding]))
            return json.loads(result)

        activities[name] = Activity(name=name, binding_name=activity.binding_name, function=call)
    return FunctionIndex(dict(index.orchestrators), activities, dict(index.bindings))


# --- the worker process ------------------------------------------------------------------------------------------
async def _serve() -> None:
    import logging

    import function_app
    from shared.runtime import close_engines

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    index = FunctionIndex.from_app(function_app.app)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STREAM_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out_lock = asyncio.Lock()
    running: set[asyncio.Task[None]] = set()

    async def emit(message: dict[str, Any]) -> None:
        async with out_lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    async def run(message: dict[str, Any]) -> None:
        await emit({"id": message["id"], "event": "started", "name": message["name"], "input": message["input"]})
        try:
            result = await index.activity(message["name"]).invoke(message["input"])
        except Exception as exc:
            await emit({"id": message["id"], "error": f"{type(exc).__name__}: {exc}"})
        else:
            await emit({"id": message["id"], "result": result})

    while line := await reader.readline():
        task = asyncio.create_task(run(json.loads(line)))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.gather(*running, return_exceptions=True)
    await close_engines()


if __name__ == "__main__":
    asyncio.run(_serve())
