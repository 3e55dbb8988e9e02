"""The scenarios: each is a full orchestrated run (or two) with one production fault injected.

A scenario is data plus small hooks: `arrange` switches the fault on before the run, `during` fires once mid-run
(when `trigger` says so), `cleanup` switches it off, and `verify` collects the evidence that the fault really
happened (a scenario whose fault never fired would pass without proving anything, so that is a failure too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faultmatrix.check import Expectation
from faultmatrix.lab import RunContext
from shared.streams import CATALOG

ALL = tuple(CATALOG)
DIRECTORY = ("users", "groups", "group_member", "group_owner", "directory_roles", "directory_role_member",
             "applications", "service_principals", "directory_role_templates")
OUTLOOK = ("mail_messages", "calendar_events", "contacts")
TEAMS = ("teams", "channels", "team_member", "chats", "chat_messages")
REPORTS = ("audit_logs_directory", "audit_logs_signins")


def _nothing(ctx: RunContext) -> None:
    return None


def _no_evidence(ctx: RunContext, http: list[tuple[int, str]]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    streams: tuple[str, ...] = ALL
    expectation: Expectation = field(default_factory=Expectation)
    settings: Mapping[str, str] = field(default_factory=dict)
    arrange: Callable[[RunContext], None] = _nothing
    during: Callable[[RunContext], Awaitable[None]] | None = None
    trigger: Callable[[RunContext, int], bool] | None = None
    cleanup: Callable[[RunContext], None] = _nothing
    verify: Callable[[RunContext, list[tuple[int, str]]], None] = _no_evidence
    body: Callable[[RunContext], dict[str, Any]] | None = None
    worker: bool = False  # activities in a worker process that can be SIGKILLed
    runs: int = 1
    second_start: bool = False
    quick: bool = False  # in the quick subset (`-m quick` / `--quick`); every scenario still runs in CI


# --- evidence helpers ------------------------------------------------------------------------------------------------
def _snapshot(ctx: RunContext) -> None:
    ctx.state["counters"] = ctx.lab.counters()


def _delta(ctx: RunContext) -> dict[str, Any]:
    before = ctx.state.get("counters") or {}
    after = ctx.lab.counters()
    out: dict[str, Any] = {"requests": after["requests"] - before.get("requests", 0)}
    for section in ("throttled_by_scope", "faults", "by_status"):
        old = before.get(section, {})
        out[section] = {k: v - old.get(k, 0) for k, v in after[section].items() if v - old.get(k, 0)}
    return out


def _graph(patch: dict[str, Any]) -> Callable[[RunContext], None]:
    def arrange(ctx: RunContext) -> None:
        _snapshot(ctx)
        ctx.lab.graph_settings(patch)
    return arrange


def _throttled(*scopes: str) -> Callable[[RunContext, list[tuple[int, str]]], None]:
    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        seen = _delta(ctx)["throttled_by_scope"]
        ctx.notes.append("429s " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())) if seen else "no 429s")
        for scope in scopes:
            if not any(k == scope or k.startswith(scope + ".") for k in seen):
                ctx.problems.append(f"the emulator answered no 429 in scope {scope}")
    return verify


def _faulted(*kinds: str) -> Callable[[RunContext, list[tuple[int, str]]], None]:
    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        seen = _delta(ctx)["faults"]
        ctx.notes.append("injected " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())) if seen else
                         "nothing injected")
        for kind in kinds:
            if not seen.get(kind):
                ctx.problems.append(f"no {kind} fault was injected")
    return verify


def _at_progress(share: float) -> Callable[[RunContext, int], bool]:
    def trigger(ctx: RunContext, done: int) -> bool:
        return done >= max(1, int(len(ctx.expected) * share))
    return trigger


# --- throttling --------------------------------------------------------------------------------------------------------
THROTTLING = [
    Scenario("429_directory", "429 storm, directory resource units (tenant+app bucket), Retry-After",
             DIRECTORY, arrange=_graph({"throttle": {"budget_scale": 0.01}}), verify=_throttled("directory"),
             quick=True),
    Scenario("429_reports", "429 storm, identity reports (5 per 10 s per app+tenant), Retry-After", REPORTS,
             arrange=_graph({"throttle": {"budget_scale": 0.2}}), verify=_throttled("reports")),
    Scenario("429_conditional_access", "429 storm, conditional access (1/s per tenant, no Retry-After)",
             ("conditional_access_policies", "users"),
             arrange=_graph({"throttle": {"scale": 1.0}}), verify=_throttled("conditional_access")),
    Scenario("429_teams", "429 storm, Teams per resource and per app+tenant, Retry-After", TEAMS,
             arrange=_graph({"throttle": {"budget_scale": 0.05, "scale": 0.2}}), verify=_throttled("teams")),
    Scenario("429_outlook", "429 storm, Outlook per mailbox (concurrency 4, rate), Retry-After", OUTLOOK,
             arrange=_graph({"throttle": {"budget_scale": 0.0005, "scale": 0.002}}), verify=_throttled("outlook")),
    Scenario("429_global", "429 storm, global per-app limit, Retry-After", ALL,
             arrange=_graph({"throttle": {"budget_scale": 0.0002}}), verify=_throttled("global")),
    Scenario("429_no_retry_after", "429 storms in every scope at once, no Retry-After anywhere", ALL,
             arrange=_graph({"throttle": {"budget_scale": 0.01, "retry_after": False}}),
             verify=_throttled("directory", "reports", "teams")),
]

# --- transport and server faults -------------------------------------------------------------------------------------
TRANSPORT = [
    Scenario("5xx_10_percent", "10% of Graph answers 503 (half with Retry-After) or 504", ALL,
             arrange=_graph({"faults": {"seed": 5, "error_rate": 0.1}}), verify=_faulted("503", "504"), quick=True),
    Scenario("reset_mid_body", "connections reset mid-body (full Content-Length, half the body)", ALL,
             arrange=_graph({"faults": {"seed": 6, "truncate_rate": 0.08}}), verify=_faulted("truncate")),
    Scenario("reset_before_answer", "connections dropped before any response byte", ALL,
             arrange=_graph({"faults": {"seed": 7, "drop_rate": 0.08}}), verify=_faulted("drop")),
    Scenario("empty_pages", "list pages served empty with a nextLink (legal in Graph)", ALL,
             arrange=_graph({"faults": {"seed": 8, "empty_page_rate": 0.2}}), verify=_faulted("empty_page")),
]


def baseline() -> Scenario:
    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        ctx.notes.append(f"{_delta(ctx)['requests']} Graph requests")
    return Scenario("baseline", "no fault: all 22 streams", ALL, arrange=_snapshot, verify=verify, quick=True)


def all_scenarios() -> list[Scenario]:
    return [baseline(), *THROTTLING, *TRANSPORT]


def by_name(names: list[str] | None) -> list[Scenario]:
    scenarios = all_scenarios()
    if not names:
        return scenarios
    known = {s.name: s for s in scenarios}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]


__all__ = ["Scenario", "all_scenarios", "asyncio", "by_name"]
