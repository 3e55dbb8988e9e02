"""`python -m faultmatrix [--only a,b] [--quick] [--set NAME=VALUE] [--markdown FILE]`: start a local stack, run the
scenarios, print the matrix table (exit code 0 only when every scenario meets every invariant). `--set` overrides an
app setting in every selected scenario, e.g. to see a scenario's checks fire with a safeguard switched off."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from faultmatrix.lab import Lab
from faultmatrix.matrix import HEADERS, Result, markdown, run_matrix, table_rows
from faultmatrix.scenarios import all_scenarios, by_name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faultmatrix", description=__doc__)
    parser.add_argument("--only", help="comma separated scenario names (default: all)")
    parser.add_argument("--quick", action="store_true", help="only the quick subset")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    parser.add_argument("--workdir", type=Path, help="where the stack keeps its state (default: a temp dir)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="app setting for every selected scenario (repeatable)")
    args = parser.parse_args(argv)
    console = Console(width=max(140, Console().width))
    try:
        scenarios = by_name(args.only.split(",") if args.only else None)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/red]")
        return 2
    if args.quick:
        scenarios = [s for s in scenarios if s.quick]
    bad = [item for item in args.set if not item.partition("=")[0] or "=" not in item]
    if bad:
        console.print(f"[red]--set takes NAME=VALUE, got {', '.join(bad)}[/red]")
        return 2
    overrides = dict(item.split("=", 1) for item in args.set)
    if overrides:
        scenarios = [dataclasses.replace(s, settings={**s.settings, **overrides}) for s in scenarios]
    if args.list:
        for s in all_scenarios():
            console.print(f"{s.name:28} {s.title}")
        return 0

    def show(result: Result) -> None:
        mark = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
        console.print(f"{mark} {result.scenario.name} ({result.seconds:.1f}s) {result.evidence}")
        for problem in result.verdict.problems:
            console.print(f"     [red]-[/red] {problem}")

    with tempfile.TemporaryDirectory(prefix="faultmatrix-") as tmp:
        workdir = args.workdir or Path(tmp)
        console.print(f"starting the local stack in {workdir} ...")
        with Lab.started(workdir) as lab:
            results = asyncio.run(run_matrix(lab, scenarios, on_result=show))
    table = Table(title="fault matrix")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("scenario", "partitions", "result") else "right")
    for row in table_rows(results):
        table.add_row(*row)
    console.print(table)
    if args.markdown:
        args.markdown.write_text(markdown(results) + "\n", "utf-8")
    failed = [r.scenario.name for r in results if not r.passed]
    console.print(f"{len(results) - len(failed)}/{len(results)} scenarios meet every invariant"
                  + (f"; failing: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
