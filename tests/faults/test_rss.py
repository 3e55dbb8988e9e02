"""The fault matrix's memory probe reads another process's peak from outside, including a peak already gone."""

from __future__ import annotations

import subprocess
import sys

from faultmatrix.rss import MB, PeakRss, high_water_mark

CHILD = """
import sys
block = bytearray(120 * 1024 * 1024)
block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
del block  # the peak is in the past when the probe stops
print("ready", flush=True)
sys.stdin.readline()
"""


def test_the_peak_of_a_freed_allocation_is_still_seen() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        probe = PeakRss(child.pid)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        peak = probe.stop()
        assert probe.kernel is not None, "Linux reports VmHWM"
        assert peak >= 120 * MB
        assert (high_water_mark(child.pid) or 0) >= 120 * MB
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    assert high_water_mark(child.pid) is None, "a process that is gone has no high-water mark"
