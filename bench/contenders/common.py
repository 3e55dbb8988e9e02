"""What every contender process reads (its config) and reports (its numbers), so the race compares like with like."""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ContenderConfig:
    """A connector's own configuration, as its users would write it (client secret included: a local file)."""

    tenant_id: str
    client_id: str
    client_secret: str
    authority_host: str
    graph_url: str  # origin only; /v1.0 is appended by each contender the way it normally would
    ca_bundle: str
    out_dir: str
    page_size: int = 999
    user_select: tuple[str, ...] = ()  # the columns the product copies by default, so every contender reads the
    message_select: tuple[str, ...] = ()  # same bytes; empty: every property Graph returns by default

    @classmethod
    def load(cls, path: Path) -> ContenderConfig:
        data = json.loads(path.read_text("utf-8"))
        data["user_select"] = tuple(data.get("user_select") or ())
        data["message_select"] = tuple(data.get("message_select") or ())
        return cls(**data)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), "utf-8")


@dataclass(slots=True)
class ContenderResult:
    name: str
    users: int = 0
    records: int = 0  # messages
    requests: int = 0
    throttled: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    error: str | None = None
    timed_out: bool = False  # stopped at the race's cap: `seconds` is the cap, the records are what it copied

    def finish(self, started: float, cpu_started: float) -> ContenderResult:
        """Wall and CPU time from the start of the sync (imports and interpreter start-up excluded)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.seconds = time.perf_counter() - started
        self.cpu_seconds = time.process_time() - cpu_started
        self.peak_rss_mb = usage.ru_maxrss / 1024.0  # Linux reports KiB
        return self

    def emit(self) -> None:
        """The last stdout line is the result (the race parses it)."""
        sys.stdout.write(json.dumps(asdict(self)) + "\n")
        sys.stdout.flush()

    @classmethod
    def parse(cls, line: str) -> ContenderResult:
        data: dict[str, Any] = json.loads(line)
        return cls(**data)
