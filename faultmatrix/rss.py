"""Peak resident memory of another process, measured from outside (the worker cannot be trusted to report on
itself, and a SIGKILLed one reports nothing).

The kernel's high-water mark (`VmHWM` in /proc/<pid>/status, Linux) is exact; psutil samples the RSS in a thread
as well, which is what is left on systems without that file. Both are read while the process still lives.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import psutil

MB = 1024 * 1024


def high_water_mark(pid: int) -> int | None:
    """Peak RSS in bytes since the process started, or None when the OS does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakRss:
    """Samples one process's RSS every `interval` seconds until `stop()`; `peak` is the larger of the samples and
    the kernel's high-water mark read at `stop()` (call it before the process exits)."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.sampled = 0
        self.kernel: int | None = None
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(self.pid)
            while not self._stop.is_set():
                self.sampled = max(self.sampled, process.memory_info().rss)
                self._stop.wait(self._interval)

    def stop(self) -> int:
        hwm = high_water_mark(self.pid)
        if hwm is not None:
            self.kernel = hwm
        self._stop.set()
        self._thread.join()
        return self.peak

    @property
    def peak(self) -> int:
        return max(self.sampled, self.kernel or 0)
