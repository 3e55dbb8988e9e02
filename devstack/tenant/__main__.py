"""Print demo tenant records as JSON lines, to look at what the emulator serves.

    python -m devstack.tenant [--preset demo] [--seed 1] KIND [PARENT_ID ...] [--offset 0] [--limit 5]
    python -m devstack.tenant users --limit 2
    python -m devstack.tenant messages <user id> --offset 100 --limit 3
"""

from __future__ import annotations

import argparse
import json
import sys

from devstack.tenant import KINDS, TenantSizes, build_tenant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.tenant", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("parents", nargs="*", help="parent ids (user, group, chat, drive, folder, role)")
    parser.add_argument("--preset", default="demo", choices=["demo", "small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--limit", type=int, default=5)
    args = parser.parse_args(argv)
    tenant = build_tenant(args.seed, TenantSizes.preset(args.preset))
    try:
        view = tenant.collection(args.kind, *args.parents)
    except ValueError as exc:
        parser.error(str(exc))
    if view is None:
        print(f"no such parent for {args.kind}: {args.parents}", file=sys.stderr)
        return 1
    print(f"# {args.kind}: {view.count():,} records (tenant {tenant.tenant_id}, {tenant.default_domain})",
          file=sys.stderr)
    for record in view.page(args.offset, args.limit):
        print(json.dumps(record, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
