"""`python -m localrun`: sync a tenant from a laptop through the function app's own orchestrator and activities.

  demo                 start the local stack (Entra, Key Vault, Graph emulators, Azurite), sync its demo tenant,
                       print what was copied and where, stop the stack
  run --settings FILE  the same against real endpoints, with a JSON / local.settings.json / .env settings file
  settings             print the app settings for a running local stack (for `func start`)
  measure              replay cost of the orchestrators at scale, without I/O
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devstack.env import DEFAULT_ENV_FILE, StackEnv
from localrun.session import RunReport, run_sync
from localrun.settings import applied, read_settings_file, stack_app_settings
from orchestrators import progress as pg
from orchestrators.requests import parse_sync_request
from shared.config import ConfigError, load_settings
from shared.streams import CATALOG

DEMO_STATE = Path(".devstack") / "demo"
LOG_FILE = Path(".devstack") / "localrun.log"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localrun", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="sync the local stack's demo tenant end to end")
    demo.add_argument("--state-dir", type=Path, default=DEMO_STATE,
                      help=f"where the stack keeps its data, blobs included (default {DEMO_STATE})")
    demo.add_argument("--size", default="demo", help="demo tenant size preset: demo, small, medium, large")
    demo.add_argument("--throttle", default="on", help="Graph emulator throttling: on, off or a window scale")
    demo.add_argument("--seed", type=int, default=1, help="demo tenant seed")
    run = sub.add_parser("run", help="sync a real tenant with a settings file")
    run.add_argument("--settings", type=Path, required=True,
                     help="JSON object or local.settings.json (Values) or KEY=VALUE lines of app settings")
    for parser_ in (demo, run):
        parser_.add_argument("--streams", help="comma separated streams (default: SYNC_STREAMS)")
        parser_.add_argument("--start-time", help="ISO 8601 start of the date window for dated streams")
        parser_.add_argument("--end-time", help="ISO 8601 end of the date window")
        parser_.add_argument("--user-filter", help="Graph $filter on users for the per-user streams")
        parser_.add_argument("--full", action="store_true", help="full resync")
        parser_.add_argument("--tenant", help="only this tenant of GRAPH_TENANT_IDS")
        parser_.add_argument("--concurrency", type=int, default=16, help="activities in parallel (default 16)")
    settings = sub.add_parser("settings", help="app settings for a running local stack (local.settings.json)")
    settings.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE)
    measure = sub.add_parser("measure", help="orchestration replay cost for N users (no I/O)")
    measure.add_argument("--users", type=int, nargs="+", default=[1000, 10000])
    return parser


def _request_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.streams:
        body["streams"] = [s.strip() for s in args.streams.split(",") if s.strip()]
    for key in ("start_time", "end_time", "user_filter"):
        if getattr(args, key):
            body[key] = getattr(args, key)
    if args.full:
        body["full"] = True
    if args.tenant:
        body["tenant_id"] = args.tenant
    return body


def _setup_logging(console: Console) -> None:
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(LOG_FILE, encoding="utf-8")
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    to_console = RichHandler(console=console, show_path=False, level=logging.ERROR)
    logging.basicConfig(level=logging.INFO, handlers=[to_file, to_console], force=True)
    for noisy in ("azure", "msal", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _sync(console: Console, args: argparse.Namespace) -> list[RunReport]:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    body = _request_body(args)
    tenants = list(settings.tenant_ids)
    request = parse_sync_request(json.dumps(body).encode(), list(CATALOG), tenants)
    if request.problems:
        raise SystemExit("error: " + "\n  ".join(["invalid options:", *request.problems]))
    chosen = [request.tenant_id] if args.tenant and request.tenant_id else tenants
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[records]:,} records"), TextColumn("{task.fields[failed]} failed"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        tasks = {tenant: bar.add_task(f"tenant {tenant[:8]}", total=None, records=0, failed=0) for tenant in chosen}

        def show(runs: dict[str, dict[str, pg.StreamProgress]]) -> None:
            for tenant in chosen:
                streams = runs.get(f"sync-{tenant}", {})
                totals = pg.totals(streams)
                bar.update(tasks[tenant], total=max(totals["total"], totals["done"]) or None,
                           completed=totals["done"], records=totals["records"], failed=totals["failed"])

        return await run_sync(chosen, request.overrides, concurrency=args.concurrency, on_progress=show)


NO_SIGN_IN = ("fix: this machine has no Azure identity the vault and the lake accept. Sign in with `az login`, "
              "or put AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET of a service principal in the "
              "settings file; the identity needs Key Vault Secrets User on the vault and Storage Blob Data "
              "Contributor on the lake (docs/running.md).")


def run_error(error: str | None) -> str:
    """A failed run's reason as a user can act on it: the message without the activity's stack trace, and the fix
    when no Azure sign-in worked (the SDK's own text lists every credential it tried, none of them the fix)."""
    text = (error or "unknown error").split("Traceback (most recent call last)", 1)[0].strip()
    if "ClientAuthenticationError" in text or "DefaultAzureCredential failed" in text:
        return f"{text.splitlines()[0]}\n{NO_SIGN_IN}"
    return text


def _print(console: Console, reports: Sequence[RunReport]) -> int:
    worst = 0
    for report in reports:
        if report.summary is None:
            console.print(f"[red]run {report.instance_id} {report.status}:[/] {run_error(report.error)}",
                          markup=True, highlight=False)
            worst = 2
            continue
        table = Table(title=f"tenant {report.tenant_id}  run {report.summary['run_id']}")
        for column in ("stream", "partitions", "records", "skipped", "failed", "seconds"):
            table.add_column(column, justify="left" if column == "stream" else "right")
        for s in report.streams:
            table.add_row(s.stream, f"{s.partitions:,}", f"{s.records:,}", str(s.skipped or ""),
                          f"[red]{s.failed}" if s.failed else "", f"{s.seconds:.1f}")
        table.add_row("[bold]total", f"{report.summary['partitions']:,}", f"{report.summary['records']:,}",
                      str(report.summary["skipped"]), str(report.summary["failed"]), f"{report.wall_seconds:.1f} wall")
        console.print(table)
        for failure in report.failures[:10]:
            console.print(f"[red]failed[/] {failure['stream']} {failure.get('parent_id') or ''}: "
                          f"{failure.get('error_code')}: {failure.get('error_message')}")
        reasons: dict[str, int] = {}
        for skip in report.skips:
            key = f"{skip['stream']}: {skip.get('reason') or skip.get('error_code')}"
            reasons[key] = reasons.get(key, 0) + 1
        for reason, count in sorted(reasons.items()):
            console.print(f"[yellow]skipped[/] {count} x {reason}")
        console.print(f"data      {report.output_url}")
        console.print(f"manifest  {report.summary['manifest_path']}")
        marker = "[green]_SUCCESS written" if report.success_marker else "[red]no _SUCCESS (partitions failed)"
        console.print(f"status    {report.status}: {marker}")
        if report.status != "succeeded":
            worst = max(worst, 1)
    return worst


def _demo(console: Console, args: argparse.Namespace) -> int:
    from devstack.process import StackStartError, start_stack

    state = args.state_dir.resolve()
    env_file = state.parent / f"{state.name}.env"
    console.print(f"starting the local stack (state in {state}) ...")
    try:
        stack = start_stack(state, env_file, "--size", args.size, "--throttle", args.throttle, "--seed",
                            str(args.seed))
    except StackStartError as exc:
        console.print(f"[red]{exc}")
        return 2
    try:
        env: StackEnv = stack.env
        console.print(f"stack up: tenant {env.tenant_id}, graph {env.graph_url}, blob {env.blob_account_url}")
        with applied(stack_app_settings(env)):
            reports = asyncio.run(_sync(console, args))
        code = _print(console, reports)
        console.print(f"blobs are kept in {state} (python -m devstack up --state-dir {state} serves them again)")
        return code
    finally:
        console.print("stopping the local stack ...")
        survivors = stack.stop()
        if survivors:
            console.print(f"[red]processes still running after stop: {survivors}")


def _run(console: Console, args: argparse.Namespace) -> int:
    try:
        values = read_settings_file(args.settings)
    except ValueError as exc:
        console.print(f"[red]error: {exc}")
        return 2
    with applied(values):
        reports = asyncio.run(_sync(console, args))
    return _print(console, reports)


def _settings(console: Console, args: argparse.Namespace) -> int:
    try:
        env = StackEnv.load(args.env_file)
    except FileNotFoundError:
        console.print(f"[red]error: {args.env_file} not found; start the stack with `python -m devstack up`")
        return 2
    values = {"FUNCTIONS_WORKER_RUNTIME": "python", **stack_app_settings(env)}
    print(json.dumps({"IsEncrypted": False, "Values": values}, indent=2))
    return 0


def _measure(console: Console, args: argparse.Namespace) -> int:
    from localrun.measure import measure

    table = Table(title="orchestration replay cost (real SDK, simulated activities)")
    columns = ("users", "partitions", "instances", "episodes", "replay s", "wall s", "max events",
               "max history KB", "run history KB")
    for column in columns:
        table.add_column(column, justify="right")
    for users in args.users:
        started = time.perf_counter()
        m = asyncio.run(measure(users))
        console.print(f"{users} users measured in {time.perf_counter() - started:.1f}s")
        table.add_row(f"{m.users:,}", f"{m.partitions:,}", str(m.instances), f"{m.episodes:,}",
                      f"{m.replay_seconds:.1f}", f"{m.wall_seconds:.1f}", str(m.max_history_events),
                      f"{m.max_history_bytes / 1024:.0f}", f"{m.run_history_bytes / 1024:.0f}")
    console.print(table)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    _setup_logging(console)
    handlers = {"demo": _demo, "run": _run, "settings": _settings, "measure": _measure}
    return handlers[args.command](console, args)


if __name__ == "__main__":
    sys.exit(main())
