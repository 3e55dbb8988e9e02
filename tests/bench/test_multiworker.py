"""Several worker processes against one emulator: with the shared governor the combined offered load per
throttling scope stays within the limit and (almost) nothing is answered 429; without it the same measurement shows
the overshoot. Rates come from the emulator's own per-request timeline; nothing here measures time itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import multiworker as mw
from tests.conftest import RunningStack

pytestmark = pytest.mark.timeout(300)
BUDGET_SCALE = 0.05  # small tier: 175 RU / 10 s; reports 1 / 10 s; conditional access 1 / s


def test_scope_reports_measure_offered_load_and_429s_after_the_first() -> None:
    timeline = [[0.0, "users", 200, 2], [1.0, "users", 429, 2], [2.0, "group_members", 200, 3],
                [9.5, "users", 200, 2], [11.5, "users", 200, 2], [0.1, "sign_ins", 200, 0],
                [0.2, "sign_ins", 429, 0], [0.3, "sign_ins", 200, 0], [5.0, "conditional_access_policies", 200, 0]]
    reports = mw.scope_reports(timeline, mw.limits(1.0, "S"))
    directory = reports["directory"]
    assert (directory.requests, directory.throttled, directory.peak) == (5, 1, 9)  # 429s are offered load too
    assert (directory.after_first, directory.throttled_after_first) == (3, 0)
    assert reports["reports"].peak == 3 and reports["reports"].share_after_first == 0.0
    assert reports["ca"].limit == 1 and reports["ca"].window == 1
    assert mw.limits(0.05, "S")["directory"] == (175.0, 10.0)


@pytest.fixture()
def throttled_stack(stack: RunningStack) -> Iterator[mw.Stack]:
    """The session stack with documented throttling on and small budgets; put back as it was afterwards."""
    bench_stack = mw.Stack(stack.env)
    before = bench_stack.graph("GET", "/settings")
    bench_stack.graph("PATCH", "/settings", {"throttle": {"enabled": True, "budget_scale": BUDGET_SCALE}})
    try:
        yield bench_stack
    finally:
        bench_stack.graph("PATCH", "/settings", {"throttle": {
            k: before["throttle"][k] for k in ("enabled", "budget_scale")}})
        bench_stack.graph("POST", "/throttle/reset")


def test_worker_processes_sharing_the_ledger_stay_within_every_scope(throttled_stack: mw.Stack,
                                                                      tmp_path: Path) -> None:
    groups = throttled_stack.group_ids()
    tier = "S"  # the session tenant has 30 users
    limits = mw.limits(BUDGET_SCALE, tier)

    baseline = mw.run_phase(throttled_stack, governor="off", workers=2, seconds=6, budget_scale=BUDGET_SCALE,
                            tier=tier, groups=groups, windows=2, workdir=tmp_path)
    # The measurement can see an overshoot: uncoordinated workers exceed conditional access's 1 request per second.
    assert baseline.scopes["ca"].peak > limits["ca"][0]
    assert baseline.scopes["ca"].throttled > 0

    governed = mw.run_phase(throttled_stack, governor="shared", workers=2, seconds=20, budget_scale=BUDGET_SCALE,
                            tier=tier, groups=groups, windows=2, workdir=tmp_path)
    for scope, report in governed.scopes.items():
        assert report.requests > 0, scope
        # A grant leaves half a second of slack; a 1-second window (conditional access) is finer than the scheduling
        # delays of a loaded 2-core CI machine, so there one extra arrival is tolerated (ungoverned workers offer
        # several times the limit). `python -m bench.multiworker` reports the strict figure.
        allowed = report.limit if report.window >= 10 else 2 * report.limit
        assert report.peak <= allowed, f"{scope}: {report.peak} offered in one window, limit {report.limit}"
        assert report.throttled_after_first <= 0.01 * report.after_first, scope
    # The directory scope was driven to its budget (not merely idle), and every worker took part through Blob.
    assert governed.scopes["directory"].peak >= 0.4 * limits["directory"][0]
    assert all(w["blob"]["writes"] > 0 and w["blob"]["fallbacks"] == 0 for w in governed.workers)
    # Workers copy the same partitions at once (the orchestrator never does): only their checkpoints may collide.
    assert all(set(w.get("errors", {})) <= {"CheckpointConflict"} for w in governed.workers)
