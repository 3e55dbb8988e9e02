"""Run `python -m devstack up` as a child process group and wait for its env file: what tests, the local runner
and benchmarks use so they exercise the exact command a developer runs.

The child gets its own session (process group), so teardown signals the whole group and can prove that no
`node` or Python descendant survived.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from devstack.env import StackEnv

REPO_ROOT = Path(__file__).resolve().parent.parent


class StackStartError(RuntimeError):
    pass


@dataclass(slots=True)
class StackProcess:
    process: subprocess.Popen[bytes]
    env_file: Path
    log_file: Path
    env: StackEnv
    descendants: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text("utf-8", "replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no output)"

    def refresh_descendants(self) -> list[int]:
        with contextlib.suppress(psutil.NoSuchProcess):
            kids = psutil.Process(self.pid).children(recursive=True)
            self.descendants = sorted(set(self.descendants) | {p.pid for p in kids})
        return self.descendants

    def stop(self, grace_seconds: float = 20.0) -> list[int]:
        """SIGTERM the group, SIGKILL after the grace period; returns the pids (stack + descendants) still alive."""
        self.refresh_descendants()
        pgid = self.pid
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                self.process.wait(10)
        deadline = time.monotonic() + grace_seconds
        survivors = self._alive()
        while survivors and time.monotonic() < deadline:
            time.sleep(0.1)
            survivors = self._alive()
        for pid in survivors:  # never leave anything behind, but report it so tests fail
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return survivors

    def _alive(self) -> list[int]:
        alive = []
        for pid in [self.pid, *self.descendants]:
            try:
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        return alive


def start_stack(
    state_dir: Path,
    env_file: Path,
    *args: str,
    timeout: float = 120.0,
    python: str = sys.executable,
) -> StackProcess:
    """Start the stack and block until its env file appears (or fail with the stack's own output)."""
    with contextlib.suppress(FileNotFoundError):
        env_file.unlink()
    log_file = env_file.with_name(env_file.name + ".log")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [python, "-m", "devstack", "up", "--state-dir", str(state_dir), "--env-file", str(env_file), *args]
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    handle: StackProcess | None = None
    deadline = time.monotonic() + timeout
    try:
        while True:
            if env_file.exists():
                handle = StackProcess(proc, env_file, log_file, StackEnv.load(env_file))
                handle.refresh_descendants()
                return handle
            if proc.poll() is not None:
                tail = log_file.read_text("utf-8", "replace")[-4000:]
                raise StackStartError(f"devstack exited with {proc.returncode} before it was ready:\n{tail}")
            if time.monotonic() > deadline:
                tail = log_file.read_text("utf-8", "replace")[-4000:]
                raise StackStartError(f"devstack not ready after {timeout:.0f}s:\n{tail}")
            time.sleep(0.05)
    except BaseException:
        if handle is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        raise
