"""Demo tenant benchmark: how fast records are generated for Graph-sized pages, and what it costs in memory.

    python -m bench.tenant_bench [--preset large] [--seed 7] [--pages 20] [--json]

For `users` (page size 999) and the largest mailbox's `messages` (page size 1000) it prints records/s (wall and
CPU), the ratio against serializing the same page with orjson (the emulator's unavoidable cost per page), and the
ratio of a page at the end of the collection against the first page (paging must not get slower with the offset).
RSS is measured with psutil before the tenant is built and after all pages: the on-demand design keeps it flat.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devstack.tenant import TenantSizes, build_tenant  # noqa: E402
from devstack.tenant.views import View  # noqa: E402


def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def measure(view: View, page_size: int, pages: int) -> dict[str, float]:
    """Records/s over `pages` consecutive pages from the start, then one page at the very end."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    records = 0
    encode = 0.0
    first_page = 0.0
    for p in range(pages):
        t0 = time.process_time()
        page = view.page(p * page_size, page_size)
        if p == 0:
            first_page = time.process_time() - t0
        t1 = time.process_time()
        orjson.dumps({"value": page})
        encode += time.process_time() - t1
        records += len(page)
        if len(page) < page_size:
            break
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0 - encode
    t0 = time.process_time()
    last = view.page(max(0, view.count() - page_size), page_size)
    last_page = time.process_time() - t0
    return {
        "records": records,
        "records_per_s_wall": records / max(wall, 1e-9),
        "records_per_s_cpu": records / max(cpu, 1e-9),
        "generate_vs_encode": cpu / max(encode, 1e-9),
        "last_vs_first_page": last_page / max(first_page, 1e-9) if last else 0.0,
    }


def run(preset: str, seed: int, pages: int) -> dict[str, Any]:
    before = rss_mib()
    t0 = time.perf_counter()
    tenant = build_tenant(seed, TenantSizes.preset(preset))
    build_s = time.perf_counter() - t0
    built = rss_mib()
    lay = tenant.layout
    biggest = max(range(lay.sizes.users), key=lambda u: lay.mailbox_counts[u])
    users = tenant.collection("users")
    messages = tenant.collection("messages", lay.user_id(biggest))
    assert users is not None and messages is not None
    result = {
        "preset": preset,
        "users": users.count(),
        "messages_total": lay.sizes.total_messages,
        "largest_mailbox": messages.count(),
        "build_s": build_s,
        "users_999": measure(users, 999, pages),
        "messages_1000": measure(messages, 1000, pages),
        "rss_mib": {"start": before, "built": built, "end": rss_mib()},
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="large", choices=["demo", "small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pages", type=int, default=20, help="pages per collection (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    result = run(args.preset, args.seed, args.pages)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"tenant preset={result['preset']} users={result['users']:,} messages={result['messages_total']:,} "
          f"largest mailbox={result['largest_mailbox']:,} built in {result['build_s']:.2f}s")
    for name in ("users_999", "messages_1000"):
        m = result[name]
        print(f"{name:>14}: {m['records']:>7,} records  {m['records_per_s_wall']:>8,.0f}/s wall  "
              f"{m['records_per_s_cpu']:>8,.0f}/s cpu  generate/encode x{m['generate_vs_encode']:.1f}  "
              f"last/first page x{m['last_vs_first_page']:.2f}")
    rss = result["rss_mib"]
    print(f"RSS MiB: start {rss['start']:.0f}, tenant built {rss['built']:.0f}, after paging {rss['end']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
