"""The race: this product against a serial pager and the official SDK, and against the lower bound, in one run.

    python -m bench.race --preset small|medium|full [--contenders product,floor,serial,sdk] [--json out.json]

One local stack (Graph emulator with documented throttling ON and per-request latency with a long tail), one
tenant preset; every contender copies the same streams (users + every user's messages) in a process of its own
and under its own app registration (Graph throttles per app, so no contender inherits another's spent budget).
Between contenders the emulator's counters are reset, so requests and 429s per scope are each contender's own.
The lower bound comes from the tenant's layout (pages per mailbox) and the throttle model (`bench.lower_bound`);
the read-only floor (`bench.contenders.floor`) measures what this machine allows any client, so a contender's
gap to the bound splits into the machine's share (floor / bound) and its own (seconds / floor).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil
import requests
from rich.console import Console
from rich.table import Table

from bench import lower_bound as lb
from bench.contenders.common import ContenderConfig, ContenderResult
from devstack.env import StackEnv
from devstack.graph.endpoints import ENDPOINTS
from devstack.graph.throttle import tier_for_users
from devstack.process import start_stack
from devstack.tenant.layout import Layout
from devstack.tenant.sizes import TenantSizes
from shared.streams import CATALOG

REPO = Path(__file__).resolve().parents[1]
PRESETS = {"tiny": "demo", "small": "small", "medium": "medium", "full": "large"}
STREAMS = ("users", "mail_messages")
PAGE_SIZE = 999  # every contender asks for the same page size (the product's default)
NAMES = {"product": "this product", "floor": "read-only floor", "serial": "serial pager",
         "sdk": "msgraph-sdk script"}
CONTENDERS = tuple(NAMES)
MAILBOX_ROLES = ["User.Read.All", "Mail.Read"]
# A `$batch` envelope is a row of its own: the items inside it count in their own scopes.
FAMILY = {ep.name: ep.family for ep in ENDPOINTS} | {"$batch": "$batch envelopes"}
USER_SELECT = CATALOG["users"].default_select or ()
MESSAGE_SELECT = CATALOG["mail_messages"].default_select or ()


@dataclass(slots=True)
class Plan:
    """What the tenant holds for the raced streams, from its layout (the same seed and sizes the stack serves)."""

    users: int
    messages: int
    user_pages: int
    mailbox_pages: dict[str, int]

    @property
    def requests(self) -> int:
        return self.user_pages + sum(self.mailbox_pages.values())


@dataclass(slots=True)
class Lap:
    result: ContenderResult
    counters: dict[str, Any]
    scopes: dict[str, dict[str, int]] = field(default_factory=dict)
    emulator_cpu_s: float = 0.0  # the Graph emulator's CPU while this contender ran (one process, one loop)


def plan_for(seed: int, sizes: TenantSizes, page_size: int = PAGE_SIZE) -> Plan:
    layout = Layout(seed, sizes)
    pages: dict[str, int] = {}
    messages = 0
    for i in range(sizes.users):
        count = layout.messages_in(i) if layout.mailbox_state(i) == "ok" else 0
        messages += count
        pages[layout.user_id(i)] = lb.pages_for(count, page_size)
    return Plan(sizes.users, messages, lb.pages_for(sizes.users, page_size), pages)


def bound_for(plan: Plan, latency: lb.Latency) -> lb.Bound:
    # users with $select-free listing: 2 RU a page (cost table); mailboxes: one Outlook scope each.
    scopes = [lb.directory_load(2 * plan.user_pages, tier_for_users(plan.users)), lb.global_load(plan.requests),
              *lb.outlook_loads(plan.mailbox_pages)]
    critical = lb.critical_path_pages(plan.user_pages, plan.mailbox_pages.values())
    return lb.lower_bound(scopes, critical, latency)


def per_scope(counters: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Requests and 429s per throttling family (the emulator counts by endpoint and by throttle scope)."""
    out: dict[str, dict[str, int]] = {}
    for endpoint, count in counters.get("by_endpoint", {}).items():
        family = FAMILY.get(endpoint, "other")
        out.setdefault(family, {"requests": 0, "throttled": 0})["requests"] += int(count)
    for scope, count in counters.get("throttled_by_scope", {}).items():
        family = scope.split(".")[0] if scope != "conditional_access" else "ca"
        out.setdefault(family, {"requests": 0, "throttled": 0})["throttled"] += int(count)
    return out


class Admin:
    def __init__(self, env: StackEnv) -> None:
        self.env = env
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = env.ca_bundle

    def graph(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(method, f"{self.env.graph_admin_url}{path}", json=body, timeout=60)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def register_app(self, name: str, roles: list[str] | None = None) -> tuple[str, str]:
        body: dict[str, Any] = {"display_name": name, "home_tenant": self.env.tenant_id,
                                "roles": roles or MAILBOX_ROLES, "secret": True}
        resp = self.http.post(f"{self.env.entra_admin_url}/apps", json=body, timeout=60)
        resp.raise_for_status()
        created = resp.json()
        return str(created["client_id"]), str(created["secret"]["value"])

    def token(self, client_id: str, secret: str) -> str:
        resp = self.http.post(f"{self.env.authority_host}/{self.env.tenant_id}/oauth2/v2.0/token",
                              data={"grant_type": "client_credentials", "client_id": client_id,
                                    "client_secret": secret, "scope": "https://graph.microsoft.com/.default"},
                              timeout=60)
        resp.raise_for_status()
        return str(resp.json()["access_token"])


def run_child(module: str, *args: str, cap: float | None = None, out_dir: Path | None = None,
              name: str = "") -> ContenderResult:
    """One contender in its own process; past `cap` seconds it is stopped and what it wrote so far is counted."""
    try:
        out = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                             check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=cap)
    except subprocess.TimeoutExpired:
        result = ContenderResult(name or module.rsplit(".", 1)[-1], seconds=cap or 0.0, timed_out=True)
        if out_dir is not None:
            result.users = count_lines(out_dir / "users.jsonl")
            result.records = count_lines(out_dir / "mail_messages.jsonl")
        result.error = f"stopped at the {cap:.0f}s cap with {result.records:,} messages copied"
        return result
    lines = [line for line in out.stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        return ContenderResult(module.rsplit(".", 1)[-1], error=f"exit {out.returncode}: {out.stderr[-500:]}")
    return ContenderResult.parse(lines[-1])


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def orjson_baseline(admin: Admin, plan: Plan, pages: int = 3) -> float:
    """CPU seconds per record for raw orjson loads + dumps of real message pages (the biggest mailboxes)."""
    biggest = [user_id for user_id, _ in sorted(plan.mailbox_pages.items(), key=lambda kv: -kv[1])]
    return orjson_cost(message_pages(admin, biggest, pages))


def message_pages(admin: Admin, user_ids: list[str], pages: int, follow: bool = False) -> list[bytes]:
    """Up to `pages` `/messages` pages with the product's `$select`: each mailbox's first page, or (`follow`)
    every page of each mailbox in turn. Mailboxes that do not exist (guests, unlicensed) are passed over."""
    client_id, secret = admin.register_app("race orjson baseline")
    token = admin.token(client_id, secret)
    bodies: list[bytes] = []
    for user_id in user_ids:
        url: str | None = (f"{admin.env.graph_url}/v1.0/users/{user_id}/messages?$top={PAGE_SIZE}"
                           f"&$select={','.join(MESSAGE_SELECT)}")
        while url and len(bodies) < pages:
            resp = admin.http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=300)
            if resp.status_code in (403, 404):
                break
            resp.raise_for_status()
            bodies.append(resp.content)
            url = orjson.loads(resp.content).get("@odata.nextLink") if follow else None
        if len(bodies) == pages:
            break
    return bodies


def orjson_cost(bodies: list[bytes], rounds: int = 5) -> float:
    """CPU seconds per record of `orjson.loads` of each page plus `orjson.dumps` of each record: the least any
    client that parses and re-serialises the records can spend. The best of `rounds` passes, so that a busy
    moment on a shared machine does not flatter the contender it is compared with."""
    best = float("inf")
    for _ in range(rounds):
        records = 0
        started = time.process_time()
        for body in bodies:
            for record in orjson.loads(body)["value"]:
                orjson.dumps(record)
                records += 1
        best = min(best, (time.process_time() - started) / max(records, 1))
    return best


def race(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    sizes = TenantSizes.preset(PRESETS[args.preset])
    plan = plan_for(args.seed, sizes)
    latency = lb.Latency(args.latency_ms / 1000.0, args.tail_rate, args.tail_ms / 1000.0)
    bound = bound_for(plan, latency)
    console.print(f"preset {args.preset}: {plan.users:,} users, {plan.messages:,} messages, "
                  f"{plan.requests:,} page requests at least; lower bound {bound.seconds:.2f}s ({bound.limited_by})")
    laps: list[Lap] = []
    with tempfile.TemporaryDirectory(prefix="race-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        stack = start_stack(root / "state", root / "devstack.env", "--size", PRESETS[args.preset], "--throttle",
                            "on", "--seed", str(args.seed), timeout=900)
        console.print(f"stack up in {time.perf_counter() - started:.1f}s")
        try:
            env = stack.env
            admin = Admin(env)
            admin.graph("PATCH", "/settings", {"faults": {"latency_ms": args.latency_ms, "tail_rate": args.tail_rate,
                                                          "tail_ms": args.tail_ms, "seed": args.seed}})
            baseline = orjson_baseline(admin, plan)
            runs = [(name, c) for name in args.contenders
                    for c in (args.concurrency if name == "product" else [0])]
            for name, activities in runs:
                admin.graph("POST", "/counters/reset")
                console.print(f"running {name} ...")
                emulator = psutil.Process(stack.pid)
                cpu_before = sum(emulator.cpu_times()[:2])
                if name == "product":
                    extra = [args.limits] if args.limits else []
                    result = run_child("bench.contenders.product", str(root / "devstack.env"),
                                       str(activities), ",".join(STREAMS), *extra)
                    if len(args.concurrency) > 1:
                        result.name += f" ({activities} activities)"
                else:
                    client_id, secret = admin.register_app(f"race {name}")
                    config = ContenderConfig(env.tenant_id, client_id, secret, env.authority_host,
                                             env.graph_url or "", env.ca_bundle, str(root / name), PAGE_SIZE,
                                             USER_SELECT, MESSAGE_SELECT)
                    config.save(root / f"{name}.json")
                    # The floor writes nothing to extrapolate from, and it is the fastest reader: never capped.
                    result = run_child(f"bench.contenders.{name}", str(root / f"{name}.json"),
                                       cap=None if name == "floor" else args.max_seconds, out_dir=root / name,
                                       name=NAMES[name])
                counters = admin.graph("GET", "/counters")
                lap = Lap(result, counters, per_scope(counters), sum(emulator.cpu_times()[:2]) - cpu_before)
                laps.append(lap)
                console.print(f"  {result.name}: {result.seconds:.1f}s, {result.records:,} messages"
                              + (f"  [red]{result.error}" if result.error else ""))
        finally:
            survivors = stack.stop()
            if survivors:
                console.print(f"[red]processes still running after stop: {survivors}")
    return report(args, plan, bound, latency, baseline, laps, console)


def report(args: argparse.Namespace, plan: Plan, bound: lb.Bound, latency: lb.Latency, baseline: float,
           laps: list[Lap], console: Console) -> dict[str, Any]:
    product = next((lap for lap in laps if lap.result.name.startswith("this product")), None)
    floor = next((lap for lap in laps if lap.result.name == NAMES["floor"] and not lap.result.error), None)
    table = Table(title=f"race, preset {args.preset}: {plan.users:,} users, {plan.messages:,} messages; "
                        f"latency {args.latency_ms:.0f} ms + {args.tail_rate:.0%} tail of {args.tail_ms:.0f}-"
                        f"{2 * args.tail_ms:.0f} ms; throttling on")
    for column in ("contender", "wall s", "x bound", "emulator CPU s", "x product", "messages", "requests", "429s",
                   "429 share after 1st", "CPU us/record", "x orjson", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "contender" else "right")
    rows = []
    for lap in laps:
        r = lap.result
        throttled = int(lap.counters.get("throttled", 0))
        requests_seen = int(lap.counters.get("requests", 0))
        after_first = max(0, throttled - len(lap.counters.get("throttled_by_scope", {}))) / max(requests_seen, 1)
        per_record = r.cpu_seconds / max(r.records + r.users, 1)
        seconds = r.seconds
        if r.timed_out:  # extrapolate from the share copied by the cap: its pace only slows with bigger mailboxes
            seconds = r.seconds * plan.messages / max(r.records, 1)
        row = {
            "contender": r.name, "seconds": seconds, "measured_seconds": r.seconds, "extrapolated": r.timed_out,
            "x_bound": seconds / bound.seconds if bound.seconds else None,
            "x_product": seconds / product.result.seconds if product and product.result.seconds else None,
            "x_floor": seconds / floor.result.seconds if floor and floor.result.seconds else None,
            "messages": r.records, "users": r.users, "requests": requests_seen, "throttled": throttled,
            "throttled_share_after_first": after_first, "cpu_us_per_record": per_record * 1e6,
            "x_orjson": per_record / baseline if baseline else None, "peak_rss_mb": r.peak_rss_mb,
            "scopes": lap.scopes, "by_endpoint": lap.counters.get("by_endpoint", {}),
            "outlook_max_concurrent": max(lap.counters.get("outlook_max_concurrent", {}).values(), default=0),
            "emulator_cpu_s": lap.emulator_cpu_s,
            "x_local_floor": seconds / max(bound.seconds, lap.emulator_cpu_s) if lap.emulator_cpu_s else None,
            "error": None if r.timed_out else r.error,
            "complete": r.timed_out or (r.records == plan.messages and r.users == plan.users),
        }
        rows.append(row)
        label = r.name + (f" (stopped at {r.seconds:.0f}s)" if r.timed_out else "")
        label += "" if row["complete"] else " [red](incomplete)"
        table.add_row(label, f"~{seconds:.0f}" if r.timed_out else f"{seconds:.1f}",
                      f"{row['x_bound']:.1f}" if row["x_bound"] else "-", f"{lap.emulator_cpu_s:.1f}",
                      f"{row['x_product']:.1f}" if row["x_product"] else "-", f"{r.records:,}", f"{requests_seen:,}",
                      str(throttled), f"{after_first:.2%}", f"{per_record * 1e6:.0f}" if r.cpu_seconds else "-",
                      f"{row['x_orjson']:.1f}" if row["x_orjson"] else "-",
                      f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "-")  # a stopped contender reports neither
    table.add_row("lower bound", f"{bound.seconds:.2f}", "1.0", "-", "-", f"{plan.messages:,}", f"{plan.requests:,}",
                  "0", "-", "-", "-", "-")
    console.print(table)
    if floor is not None:
        console.print(floor_line(floor, bound, rows))
    scope_table = Table(title="requests and 429s per throttling scope (emulator counters)")
    scope_table.add_column("contender")
    for column in ("scope", "requests", "429s"):
        scope_table.add_column(column, justify="right")
    for lap in laps:
        for scope, numbers in sorted(lap.scopes.items()):
            scope_table.add_row(lap.result.name, scope, f"{numbers['requests']:,}", str(numbers["throttled"]))
    console.print(scope_table)
    console.print(f"lower bound {bound.seconds:.2f}s = max(slowest scope {bound.rate_scope} "
                  f"{bound.rate_seconds:.2f}s, critical path {bound.chain_pages} pages x {latency.mean_s * 1000:.0f}"
                  f" ms mean latency = {bound.chain_seconds:.2f}s); orjson baseline {baseline * 1e6:.1f} us/record")
    console.print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                  f"{platform.system()} {platform.release()}")
    return {"preset": args.preset, "plan": {"users": plan.users, "messages": plan.messages,
                                            "requests": plan.requests, "longest_mailbox_pages":
                                                max(plan.mailbox_pages.values(), default=0)},
            "latency": asdict(latency), "bound": {"seconds": bound.seconds, "rate_scope": bound.rate_scope,
                                                  "rate_seconds": bound.rate_seconds,
                                                  "chain_seconds": bound.chain_seconds,
                                                  "chain_pages": bound.chain_pages},
            "orjson_us_per_record": baseline * 1e6, "rows": rows, "product_concurrency": args.concurrency,
            "product_limits": args.limits,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "arch": platform.machine()}}


def floor_line(floor: Lap, bound: lb.Bound, rows: list[dict[str, Any]]) -> str:
    """The table has no room for another column: the split of each gap goes on a line of its own under it."""
    others = [f"{row['contender']} {row['x_floor']:.1f}x" for row in rows
              if row["contender"] != floor.result.name and row["x_floor"] is not None]
    return (f"read-only floor {floor.result.seconds:.1f}s = {floor.result.seconds / bound.seconds:.1f}x the lower "
            f"bound (emulator CPU {floor.emulator_cpu_s:.1f}s, {int(floor.counters.get('requests', 0)):,} "
            f"requests); x floor: " + (", ".join(others) or "-"))


def host_activity_slots() -> int:
    """What a Functions instance runs at once: the app's own host.json setting, so the race runs what ships."""
    host = json.loads((REPO / "host.json").read_text("utf-8"))
    return int(host["extensions"]["durableTask"]["maxConcurrentActivityFunctions"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.race", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--contenders", help="comma separated: product, floor, serial, sdk (default: all; full: "
                        "product, floor)")
    parser.add_argument("--latency-ms", type=float, default=60.0, help="emulator latency on every request")
    parser.add_argument("--tail-rate", type=float, default=0.02, help="share of requests with a long tail")
    parser.add_argument("--tail-ms", type=float, default=600.0, help="tail latency (drawn from 1-2x this)")
    parser.add_argument("--concurrency", help="the product's concurrent activities, comma separated to race "
                        "several settings in one run (default: host.json maxConcurrentActivityFunctions)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limits", help='the run request\'s fan-out limits for the product, e.g. '
                        '\'{"partitions_in_flight": 200}\' (default: the orchestrator\'s own)')
    parser.add_argument("--max-seconds", type=float, help="stop a baseline after this long and extrapolate "
                        "its time from the share it copied (the SDK script takes hours on medium)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    args.concurrency = ([int(c) for c in args.concurrency.split(",")] if args.concurrency
                        else [host_activity_slots()])
    default = "product,floor" if args.preset == "full" else ",".join(CONTENDERS)
    args.contenders = [c.strip() for c in (args.contenders or default).split(",") if c.strip()]
    unknown = sorted(set(args.contenders) - set(CONTENDERS))
    if unknown:
        parser.error(f"--contenders: unknown {unknown}; use {', '.join(CONTENDERS)}")
    console = Console(width=160)
    numbers = race(args, console)
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2), "utf-8")
    failed = [row["contender"] for row in numbers["rows"] if row["error"] or not row["complete"]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

