"""Runs scenarios on a lab and renders the matrix table."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from activities import sync as activities
from devstack.ca import load_or_create
from faultmatrix.blobproxy import CommitFaultProxy
from faultmatrix.check import Verdict
from faultmatrix.lab import Lab, RunContext, app_settings, applied, captured_logs, judge, new_container, run_once
from faultmatrix.scenarios import Scenario
from faultmatrix.trap import Trap
from localrun.runtime import RuntimeOptions


@dataclass(slots=True)
class Result:
    scenario: Scenario
    verdict: Verdict
    seconds: float
    notes: list[str]
    http: list[tuple[int, str]]

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def evidence(self) -> str:
        return "; ".join(self.notes)


async def run_scenario(lab: Lab, scenario: Scenario) -> Result:
    """One scenario end to end: expected data first (faults off), fault on, run(s), fault off, judge."""
    started = time.monotonic()
    lab.reset_faults()
    lab.collect_secrets()
    streams = list(scenario.streams)
    expected = lab.expected(streams)
    container = new_container(scenario.name)
    settings = app_settings(lab, container, dict(scenario.settings))
    ctx = RunContext(lab, expected, settings)
    http: list[tuple[int, str]] = []
    status: str | None = None
    summary = None
    async with contextlib.AsyncExitStack() as stack:
        if scenario.commit_faults:
            certs = load_or_create(Path(lab.env.state_dir) / "certs")
            parts = urlsplit(lab.env.blob_account_url)
            proxy = await stack.enter_async_context(CommitFaultProxy(
                certs.server_ssl_context(), f"{parts.scheme}://{parts.netloc}", lab.env.ca_bundle,
                fail_commits=scenario.commit_faults))
            ctx.state["blob_proxy"] = proxy
            settings["OUTPUT_ACCOUNT_URL"] = proxy.url + parts.path
        if scenario.needs_trap:
            certs = load_or_create(Path(lab.env.state_dir) / "certs")
            ctx.state["trap"] = await stack.enter_async_context(Trap(certs.server_ssl_context()))
        try:
            scenario.arrange(ctx)
            with applied(settings), captured_logs() as logs:
                activities.settings.cache_clear()
                for attempt in range(scenario.runs):
                    if attempt and scenario.between is not None:
                        scenario.between(ctx)
                    body = scenario.body(ctx) if scenario.body else {"streams": streams}
                    options = RuntimeOptions(max_concurrent_activities=16, virtual_timers=not scenario.real_timers,
                                             activity_timeout=600)
                    status, summary = await run_once(
                        ctx, body, worker=scenario.worker, during=scenario.during if attempt == 0 else None,
                        trigger=scenario.trigger, runtime_options=options, http=http,
                        second_start=scenario.second_start)
                activities.settings.cache_clear()
        finally:
            scenario.cleanup(ctx)
            lab.reset_faults()
        scenario.verify(ctx, http)
    verdict = judge(lab, ctx, container, status, summary, scenario.expectation, logs.lines, http)
    return Result(scenario, verdict, round(time.monotonic() - started, 1), ctx.notes, http)


async def run_matrix(lab: Lab, scenarios: Sequence[Scenario],
                     on_result: Callable[[Result], None] | None = None) -> list[Result]:
    results = []
    for scenario in scenarios:
        result = await run_scenario(lab, scenario)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


HEADERS = ("scenario", "expected", "written", "lost", "dup", "in failed", "partitions", "ok/skip/fail", "re-runs",
           "retries", "_SUCCESS", "result", "s")


def table_rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in results:
        v = r.verdict
        outcome = "PASS" if r.passed else "FAIL"
        rows.append((r.scenario.name, f"{v.expected:,}", f"{v.written:,}", str(v.lost), str(v.duplicated),
                     str(v.unsynced), f"{v.partitions_accounted}/{v.partitions_expected}",
                     f"{v.ok}/{v.skipped}/{v.failed}", str(v.reruns), f"{v.retries:,}",
                     "yes" if v.success_marker else "no",
                     f"{outcome} ({v.outcome})", f"{r.seconds:.0f}"))
    return rows


def markdown(results: Sequence[Result]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " | evidence |", "|" + "---|" * (len(HEADERS) + 1)]
    for row, r in zip(table_rows(results), results, strict=True):
        lines.append("| " + " | ".join(row) + f" | {r.evidence.replace('|', '/')} |")
    return "\n".join(lines)
