"""Engine benchmark against the local stack: one large partition's throughput and memory, and concurrency.

    python -m bench.engine_bench [--large 200000] [--small 1000] [--partitions 48] [--latency-ms 50]

1. records/s and peak RSS of ONE partition of `--large` records (directory audits) against a baseline partition
   of `--small` records (sign-ins), each in a fresh child process: the writer stages blocks as pages arrive, so
   peak RSS should differ by a small constant (about a page), not grow with the partition.
2. CPU per record of the mail path on ONE big mailbox (a tenant of `--mailbox` messages per mailbox on average;
   its biggest readable mailbox, a full sync through `sync_partition` measured on its second run after a
   warm-up: folder deltas, `$batch`, gzip JSON Lines, checkpoint) against raw `orjson` loads + dumps of
   the same messages fetched with `/messages` pages: the per-record cost with per-partition overhead amortised
   away (the race's figure includes it: its mailboxes hold ~100 messages).
3. records/s with 1 vs 16 partitions in flight (mailboxes, one worker process, one event loop, one pooled
   session) with `--latency-ms` of emulator latency per request: the ratio shows what cooperative concurrency buys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devstack.env import StackEnv  # noqa: E402
from devstack.process import start_stack  # noqa: E402
from shared.config import Settings, load_settings  # noqa: E402
from shared.contracts import PartitionResult, RunInfo  # noqa: E402
from shared.runtime import close_engines  # noqa: E402
from shared.sync import list_parents, read_parent_chunk, sync_partition  # noqa: E402


def environ_for(env: StackEnv, **extra: str) -> dict[str, str]:
    values = {
        "GRAPH_TENANT_IDS": env.tenant_id, "GRAPH_CLIENT_ID": env.graph_app.client_id,
        "KEY_VAULT_URL": env.key_vault_url, "GRAPH_CLIENT_SECRET_NAME": env.graph_app.client_secret_name,
        "AZURE_CLIENT_ID": env.workload_identity.client_id, "GRAPH_AUTHORITY_HOST": env.authority_host,
        "GRAPH_ENDPOINT": env.graph_url or "", "CA_BUNDLE": env.ca_bundle,
        "OUTPUT_ACCOUNT_URL": env.blob_account_url, "OUTPUT_CONTAINER": "bench", "OUTPUT_FORMAT": "jsonl.gz",
    }
    values.update(extra)
    return values


def new_run(env: StackEnv, label: str) -> RunInfo:
    """A full read every time: an incremental run after the first would copy (almost) nothing."""
    return RunInfo(run_id=f"bench-{label}-{int(time.time() * 1000)}", tenant_id=env.tenant_id, trigger="local",
                   started_at=datetime.now(UTC).isoformat(), overrides={"full": True})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


async def child(env_file: Path, stream: str) -> dict[str, Any]:
    """One partition in this (fresh) process; prints its numbers as JSON."""
    env = StackEnv.load(env_file)
    os.environ.update(env.workload_environment())
    settings = load_settings(environ_for(env))
    started = time.perf_counter()
    result = await sync_partition(settings, new_run(env, stream), stream, None)
    elapsed = time.perf_counter() - started
    await close_engines()
    if result["status"] != "ok":
        raise SystemExit(f"{stream}: {result}")
    return {"stream": stream, "records": result["records"], "pages": result["pages"], "bytes": result["bytes"],
            "seconds": elapsed, "records_per_s": result["records"] / elapsed, "peak_rss_mb": peak_rss_mb()}


def run_child(env_file: Path, stream: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.engine_bench", "--child", stream, "--env-file", str(env_file)],
                         cwd=REPO, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child for {stream} failed:\n{out.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


async def mailbox_child(env_file: Path) -> dict[str, Any]:
    """Every mailbox's first sync in this fresh process, twice, CPU-timed one by one; the biggest one's second
    sync is reported (a full read again: the bench's runs ask for `full`)."""
    env = StackEnv.load(env_file)
    os.environ.update(env.workload_environment())
    settings = load_settings(environ_for(env, OUTPUT_CONTAINER="bench-mailbox"))
    listing = await list_parents(settings, new_run(env, "users"), "users")
    users: list[str] = []
    for chunk in listing["chunks"]:
        users += await read_parent_chunk(settings, chunk)
    best: dict[str, Any] = {}
    for n, user_id in enumerate(users + users):  # the first pass warms tokens, sessions, container, lazy imports
        first = n < len(users)  # as the census would say: no checkpoint yet; the second pass replaces them
        cpu = time.process_time()
        result = await sync_partition(settings, new_run(env, "mailbox"), "mail_messages", user_id, fresh=first)
        cpu = time.process_time() - cpu
        if result["status"] == "failed" and not first:
            raise SystemExit(f"the measured sync of {user_id} failed: {result.get('error_code')}")
        if result["status"] == "ok" and result["records"] >= best.get("records", 0):
            best = {"user_id": user_id, "records": result["records"], "requests": result["requests"],
                    "cpu_s": cpu, "peak_rss_mb": peak_rss_mb()}
    await close_engines()
    if not best:
        raise SystemExit("no mailbox could be read")
    return best


def mailbox_cpu(messages: int) -> dict[str, Any]:
    """The mail path's CPU per record on one big mailbox against raw orjson on the same messages."""
    from bench.race import Admin, message_pages, orjson_cost

    with tempfile.TemporaryDirectory(prefix="engine-bench-mail-") as tmp:
        root = Path(tmp)
        stack = start_stack(root / "state", root / "devstack.env", "--users", "3", "--guests", "0", "--throttle", "off",
                            "--seed", "5", "--mailbox-skew", "0", "--messages-per-mailbox", str(messages))
        try:
            out = subprocess.run([sys.executable, "-m", "bench.engine_bench", "--child", "mailbox", "--env-file",
                                  str(stack.env_file)], cwd=REPO, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"mailbox child failed:\n{out.stderr[-3000:]}")
            row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            pages = message_pages(Admin(stack.env), [row["user_id"]], pages=1_000, follow=True)
        finally:
            stack.stop()
    row["us_per_record"] = row["cpu_s"] / row["records"] * 1e6
    row["orjson_us_per_record"] = orjson_cost(pages) * 1e6
    return row


async def fan_out(settings: Settings, env: StackEnv, stream: str, ids: list[str], in_flight: int
                  ) -> dict[str, Any]:
    gate = asyncio.Semaphore(in_flight)
    run = new_run(env, f"c{in_flight}")

    async def one(parent_id: str) -> PartitionResult:
        async with gate:
            return await sync_partition(settings, run, stream, parent_id)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(p) for p in ids))
    elapsed = time.perf_counter() - started
    records = sum(r["records"] for r in results)
    bad = [r for r in results if r["status"] == "failed"]
    if bad:
        raise SystemExit(f"{len(bad)} partitions failed: {bad[0]}")
    return {"in_flight": in_flight, "partitions": len(ids), "records": records, "seconds": elapsed,
            "records_per_s": records / elapsed, "requests": sum(r["requests"] for r in results)}


async def concurrency(env: StackEnv, admin_patch: Any, partitions: int, latency_ms: float) -> list[dict[str, Any]]:
    os.environ.update(env.workload_environment())
    settings = load_settings(environ_for(env))
    listing = await list_parents(settings, new_run(env, "users"), "users")
    users: list[str] = []
    for chunk in listing["chunks"]:
        users += await read_parent_chunk(settings, chunk)
    # Warm the token, session and container once so both runs measure paging, not start-up.
    await fan_out(settings, env, "mail_messages", users[:2], 1)
    admin_patch({"faults": {"latency_ms": latency_ms, "path_prefix": "/users"}})
    try:
        rows = [await fan_out(settings, env, "mail_messages", users[:partitions], n) for n in (1, 16)]
    finally:
        admin_patch({"faults": {"latency_ms": 0, "path_prefix": ""}})
        await close_engines()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", type=int, default=200_000, help="records in the large partition")
    parser.add_argument("--small", type=int, default=1_000, help="records in the baseline partition")
    parser.add_argument("--partitions", type=int, default=48, help="mailbox partitions for the concurrency run")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="emulator latency per request")
    parser.add_argument("--mailbox", type=int, default=20_000,
                        help="mean messages per mailbox of the mail-path tenant; its biggest mailbox is measured and "
                             "its size printed (20,000 gives one of 30,000; 0: skip)")
    parser.add_argument("--only-mailbox", action="store_true", help="run only the big-mailbox CPU measurement")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--env-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("shared").setLevel(logging.ERROR)  # skipped mailboxes are expected here, not news
    if args.child:
        job = mailbox_child(args.env_file) if args.child == "mailbox" else child(args.env_file, args.child)
        print(json.dumps(asyncio.run(job)))
        return

    mail = mailbox_cpu(args.mailbox) if args.mailbox else None
    if mail:
        print(f"\nMail path, one mailbox of {mail['records']:,} messages, full sync ({mail['requests']} requests), "
              "second run in a fresh process:")
        print(f"  {mail['us_per_record']:.1f} us CPU per record; raw orjson loads + dumps of the same messages "
              f"{mail['orjson_us_per_record']:.1f} us: x{mail['us_per_record'] / mail['orjson_us_per_record']:.2f}; "
              f"peak RSS {mail['peak_rss_mb']:.0f} MB")
    if args.only_mailbox:
        if args.json:
            args.json.write_text(json.dumps({"mailbox": mail}, indent=2) + "\n")
        return

    import requests

    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        root = Path(tmp)
        stack = start_stack(root / "state", root / "devstack.env", "--users", str(max(args.partitions, 8) + 8),
                            "--throttle", "off", "--seed", "3", "--directory-audits", str(args.large),
                            "--sign-ins", str(args.small), "--mailbox-skew", "0", "--messages-per-mailbox", "60")
        http = requests.Session()
        http.trust_env = False
        http.verify = stack.env.ca_bundle

        def admin_patch(body: dict[str, Any]) -> None:
            http.patch(f"{stack.env.graph_admin_url}/settings", json=body, timeout=30).raise_for_status()

        try:
            small = run_child(stack.env_file, "audit_logs_signins")
            large = run_child(stack.env_file, "audit_logs_directory")
            rows = asyncio.run(concurrency(stack.env, admin_patch, args.partitions, args.latency_ms))
        finally:
            http.close()
            survivors = stack.stop()
            if survivors:
                print(f"warning: stack left processes {survivors}", file=sys.stderr)

    print("\nOne partition, fresh process each (audit logs, gzip JSONL, block blob):")
    print(f"{'records':>9} {'pages':>6} {'MB out':>7} {'seconds':>8} {'records/s':>10} {'peak RSS MB':>12}")
    for row in (small, large):
        print(f"{row['records']:>9} {row['pages']:>6} {row['bytes'] / 1e6:>7.1f} {row['seconds']:>8.2f} "
              f"{row['records_per_s']:>10.0f} {row['peak_rss_mb']:>12.1f}")
    rss_ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    print(f"records x{large['records'] / small['records']:.0f} -> peak RSS x{rss_ratio:.2f} "
          f"(+{large['peak_rss_mb'] - small['peak_rss_mb']:.1f} MB)")
    print(f"\nPartitions in flight, {args.latency_ms:.0f} ms emulator latency per request (mailboxes, one event loop):")
    print(f"{'in flight':>9} {'partitions':>10} {'records':>8} {'requests':>8} {'seconds':>8} {'records/s':>10}")
    for row in rows:
        print(f"{row['in_flight']:>9} {row['partitions']:>10} {row['records']:>8} {row['requests']:>8} "
              f"{row['seconds']:>8.2f} {row['records_per_s']:>10.0f}")
    print(f"16 vs 1 in flight: x{rows[1]['records_per_s'] / rows[0]['records_per_s']:.1f} records/s")
    if args.json:
        numbers = {"single": [small, large], "concurrency": rows, "mailbox": mail}
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")


if __name__ == "__main__":
    main()
