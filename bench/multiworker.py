"""Several worker processes, one tenant, one app: does the combined rate per throttling scope stay within the limit?

    python -m bench.multiworker [--workers 3] [--seconds 40] [--budget-scale 0.2] [--json out.json]

One local stack with Graph's documented throttling on (budgets scaled by --budget-scale so that a few processes on
one machine can reach them: the directory resource-unit bucket of a small tenant, audit/sign-in reports per 10 s,
conditional access per second). N worker processes run the product's engine (`shared.sync.sync_partition`) at the
same time, as N Function instances would: every round copies the directory streams, every group's members, the
sign-in and directory-audit logs in many day-sized windows and the conditional-access policies. Twice in one
command: with the governor off (each process only backs off after 429s) and on (every process books from the shared
Blob ledger). The emulator's own per-request timeline gives, per scope, the requests, the 429s, the peak offered
load over any sliding window against the limit, and the share of requests answered 429 after the first one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.race import Admin
from devstack.graph.endpoints import ENDPOINTS
from devstack.graph.throttle import CA_PER_1S, REPORTS_PER_10S, TIER_RU_PER_10S, tier_for_users
from localrun.settings import stack_app_settings
from shared.graph.budget import peak_in_window
from shared.streams import CATALOG

REPO = Path(__file__).resolve().parents[1]
FAMILY = {ep.name: ep.family for ep in ENDPOINTS}
SCOPES = ("directory", "reports", "ca")
DIRECTORY_STREAMS = ("users", "groups", "applications", "service_principals", "directory_roles")
REPORT_STREAMS = ("audit_logs_signins", "audit_logs_directory")


# --- the worker (one process = one Function instance) ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorkerSpec:
    tenant_id: str
    groups: list[str]
    windows: int
    seconds: float
    concurrency: int = 16


async def _work(spec: WorkerSpec, name: str) -> dict[str, Any]:
    from shared.config import load_settings
    from shared.runtime import close_engines, get_engine
    from shared.sync import sync_partition

    settings = load_settings()
    deadline = time.monotonic() + spec.seconds
    totals: dict[str, Any] = {"partitions": 0, "failed": 0, "requests": 0, "throttled": 0, "rounds": 0}
    # A gate per scope: partitions waiting for one scope's budget must not hold the slots of another's.
    gates = {scope: asyncio.Semaphore(spec.concurrency) for scope in ("directory", "reports", "policy")}
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    async def one(stream: str, parent: str | None, run_no: int, overrides: dict[str, Any]) -> None:
        async with gates[CATALOG[stream].workload]:
            run = {"run_id": f"{name}-{stream}-{run_no}-{uuid.uuid4().hex[:6]}", "tenant_id": spec.tenant_id,
                   "trigger": "manual", "started_at": datetime.now(UTC).isoformat(),
                   "overrides": {"full": True, **overrides}}
            result = await sync_partition(settings, run, stream, parent)  # type: ignore[arg-type]
        totals["partitions"] += 1
        if result["status"] == "failed":
            totals["failed"] += 1
            codes = totals.setdefault("errors", {})
            codes[result.get("error_code", "?")] = codes.get(result.get("error_code", "?"), 0) + 1
        totals["requests"] += result["requests"]
        totals["throttled"] += result["throttled"]

    def jobs_of(scope: str, run_no: int) -> list[Any]:
        if scope == "directory":
            return ([one(s, None, run_no, {}) for s in DIRECTORY_STREAMS]
                    + [one("group_member", g, run_no, {}) for g in spec.groups])
        if scope == "reports":
            return [one(s, None, run_no, {"start_time": (today - timedelta(days=day + 1)).isoformat(),
                                          "end_time": (today - timedelta(days=day)).isoformat()})
                    for day in range(spec.windows) for s in REPORT_STREAMS]
        return [one("conditional_access_policies", None, run_no, {}) for _ in range(4)]

    async def rounds(scope: str) -> None:
        """Each scope's partitions in rounds of their own, so a slow scope never starves the others."""
        run_no = 0
        while time.monotonic() < deadline:
            run_no += 1
            await asyncio.gather(*jobs_of(scope, run_no))
            totals["rounds"] += 1

    engine = await get_engine(settings)
    await engine.ensure_container()
    with contextlib.suppress(TimeoutError):  # time is up: queued requests are abandoned, as by a recycled instance
        await asyncio.wait_for(asyncio.gather(*(rounds(s) for s in ("directory", "reports", "policy"))),
                               timeout=max(deadline - time.monotonic(), 0.1))
    governor = engine.graph.governor
    if governor is not None:
        totals["bookings"] = sum(s.stats.bookings for s in governor.scopes.values() if s is not None)
        stats = getattr(governor.source, "stats", None)
        if stats is not None:
            totals["blob"] = asdict(stats)
    await close_engines()
    return totals


def worker_main(spec_path: Path, name: str) -> None:
    spec = WorkerSpec(**json.loads(spec_path.read_text("utf-8")))
    totals = asyncio.run(_work(spec, name))
    print(json.dumps(totals), flush=True)


# --- the driver ----------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ScopeReport:
    scope: str
    requests: int
    throttled: int
    peak: float  # offered units (RU or requests) in the fullest sliding window, 429s included
    limit: float
    window: float
    after_first: int  # requests after the first 429
    throttled_after_first: int

    @property
    def share_after_first(self) -> float:
        return self.throttled_after_first / self.after_first if self.after_first else 0.0


@dataclass(slots=True)
class Phase:
    governor: str
    seconds: float
    scopes: dict[str, ScopeReport]
    workers: list[dict[str, Any]]


def limits(budget_scale: float, tier: str) -> dict[str, tuple[float, float]]:
    """(units, window s) per scope as the emulator enforces them (its budgets scaled, never below one)."""
    return {"directory": (max(1.0, TIER_RU_PER_10S[tier] * budget_scale), 10.0),
            "reports": (max(1.0, REPORTS_PER_10S * budget_scale), 10.0),
            "ca": (max(1.0, CA_PER_1S * budget_scale), 1.0)}


def scope_reports(timeline: list[list[Any]], scope_limits: dict[str, tuple[float, float]]) -> dict[str, ScopeReport]:
    """Per scope from the emulator's timeline [time, endpoint, status, units]."""
    out: dict[str, ScopeReport] = {}
    for scope in SCOPES:
        rows = sorted((r for r in timeline if FAMILY.get(str(r[1])) == scope), key=lambda r: float(r[0]))
        units, window = scope_limits[scope]
        offered = [(float(r[0]), float(r[3]) if scope == "directory" else 1.0) for r in rows]
        first = next((i for i, r in enumerate(rows) if int(r[2]) == 429), None)
        later = rows[first + 1:] if first is not None else []
        out[scope] = ScopeReport(scope, len(rows), sum(1 for r in rows if int(r[2]) == 429),
                                 peak_in_window(offered, window), units, window, len(later),
                                 sum(1 for r in later if int(r[2]) == 429))
    return out


class Stack(Admin):
    """Admin calls and worker environments for one running local stack."""

    def group_ids(self) -> list[str]:
        """Listed under an app of its own, so the listing spends none of the workers' budget."""
        token = self.token(*self.register_app("multiworker lister", ["Group.Read.All"]))
        ids: list[str] = []
        link: str | None = f"{self.env.graph_url}/v1.0/groups?$select=id&$top=999"
        while link:
            page = self.http.get(link, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            page.raise_for_status()
            body = page.json()
            ids += [g["id"] for g in body["value"]]
            link = body.get("@odata.nextLink")
        return ids

    def worker_env(self, governor: str, budget_scale: float, tier: str, container: str, prefix: str) -> dict[str, str]:
        return {**os.environ, **stack_app_settings(self.env), "GRAPH_GOVERNOR": governor,
                "GRAPH_BUDGET_SHARE": str(budget_scale), "GRAPH_TENANT_SIZE": tier, "OUTPUT_CONTAINER": container,
                "OUTPUT_PREFIX": prefix, "OUTPUT_FORMAT": "jsonl", "PYTHONUNBUFFERED": "1"}


def run_phase(stack: Stack, *, governor: str, workers: int, seconds: float, budget_scale: float, tier: str,
              groups: list[str], windows: int, workdir: Path) -> Phase:
    """N worker processes at once against a rested budget; the scopes as the emulator counted them."""
    stack.graph("POST", "/throttle/reset")
    stack.graph("POST", "/counters/reset")
    spec_path = workdir / f"spec-{governor}.json"
    spec_path.write_text(json.dumps(asdict(WorkerSpec(stack.env.tenant_id, groups, windows, seconds))), "utf-8")
    procs = []
    started = time.monotonic()
    for i in range(workers):
        # One OUTPUT_PREFIX for all, as every instance of one app has: the ledgers live under it.
        env = stack.worker_env(governor, budget_scale, tier, "multiworker", governor)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "bench.multiworker", "--worker", str(spec_path), "--name", f"{governor}-w{i}"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=seconds + 120)
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if proc.returncode != 0 or not lines:
                raise RuntimeError(f"worker exited {proc.returncode}: {err[-2000:]}")
            result = json.loads(lines[-1])
            result["ledger_warnings"] = [line for line in err.splitlines() if "budget ledger" in line][:3]
            outputs.append(result)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.monotonic() - started
    counters = stack.graph("GET", "/counters?timeline")
    return Phase(governor, elapsed, scope_reports(counters["timeline"], limits(budget_scale, tier)), outputs)


def render(phases: list[Phase], workers: int) -> str:
    lines = ["| governor | scope | requests | 429s | peak offered / window | documented limit (scaled) | "
             "peak / limit | 429 share after the first 429 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for phase in phases:
        for report in phase.scopes.values():
            unit = "RU" if report.scope == "directory" else "req"
            lines.append(
                f"| {phase.governor} | {report.scope} | {report.requests:,} | {report.throttled:,} | "
                f"{report.peak:,.0f} {unit} / {report.window:.0f} s | {report.limit:,.0f} {unit} / "
                f"{report.window:.0f} s | {report.peak / report.limit:.2f} | "
                f"{report.share_after_first:.1%} ({report.throttled_after_first}/{report.after_first}) |")
    lines.append("")
    for phase in phases:
        bookings = sum(int(w.get("bookings", 0)) for w in phase.workers)
        blob = [w.get("blob", {}) for w in phase.workers]
        writes = sum(int(b.get("writes", 0)) for b in blob)
        conflicts = sum(int(b.get("conflicts", 0)) for b in blob)
        partitions = sum(int(w["partitions"]) for w in phase.workers)
        failed = sum(int(w["failed"]) for w in phase.workers)
        codes: dict[str, int] = {}
        for w in phase.workers:
            for code, count in w.get("errors", {}).items():
                codes[code] = codes.get(code, 0) + int(count)
        why = f": {', '.join(f'{c} {n}' for c, n in sorted(codes.items()))}" if codes else ""
        reads = sum(int(b.get("reads", 0)) for b in blob)
        fallbacks = sum(int(b.get("fallbacks", 0)) for b in blob)
        lines.append(f"governor {phase.governor}: {workers} workers, {phase.seconds:.0f} s, {partitions:,} partitions "
                     f"({failed:,} failed{why}), {bookings:,} grants booked, {reads:,} ledger reads and {writes:,} "
                     f"writes ({conflicts:,} lost an ETag race and re-read), {fallbacks} fallbacks to a local share")
        lines += [f"  {w}" for worker in phase.workers for w in worker.get("ledger_warnings", [])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=40.0, help="how long each phase's workers run")
    parser.add_argument("--budget-scale", type=float, default=0.2,
                        help="emulator budgets x this (the workers' GRAPH_BUDGET_SHARE is the same)")
    parser.add_argument("--groups", type=int, default=120, help="groups in the tenant (one partition each)")
    parser.add_argument("--windows", type=int, default=10, help="day windows per log stream per round")
    parser.add_argument("--phases", default="off,shared", help="governor modes, in order")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--name", default="worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker, args.name)
        return 0
    from devstack.process import start_stack

    users = 40  # below 50: the small tier, the tightest directory budget
    with tempfile.TemporaryDirectory(prefix="multiworker-") as tmp:
        root = Path(tmp)
        proc = start_stack(root / "state", root / "devstack.env", "--users", str(users), "--groups",
                           str(args.groups), "--teams", "0", "--throttle", "on", "--seed", "11", timeout=600)
        try:
            stack = Stack(proc.env)
            stack.graph("PATCH", "/settings", {"throttle": {"budget_scale": args.budget_scale},
                                                     "faults": {"latency_ms": 20}})
            groups = stack.group_ids()
            tier = tier_for_users(users)
            phases = [run_phase(stack, governor=mode, workers=args.workers, seconds=args.seconds,
                                budget_scale=args.budget_scale, tier=tier, groups=groups, windows=args.windows,
                                workdir=root) for mode in args.phases.split(",")]
        finally:
            proc.stop()
    print(f"{args.workers} worker processes, {len(groups)} groups, tier {tier}, budgets x{args.budget_scale} "
          f"(emulator and GRAPH_BUDGET_SHARE), {args.seconds:.0f} s per phase\n")
    print(render(phases, args.workers))
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in phases], indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
