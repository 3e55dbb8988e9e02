"""Run-time knobs of the Graph emulator; mutable on purpose so the admin API and tests can change a running app."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

TenantTier = Literal["S", "M", "L"]


@dataclass(slots=True)
class ThrottleSettings:
    """`scale` multiplies every throttling window (0.1 = windows 10x shorter, so budgets refill 10x faster)."""

    enabled: bool = True
    scale: float = 1.0
    budget_scale: float = 1.0  # multiplies every budget (0.01 = a hundredth of the requests fit in a window)
    global_budget_scale: float = 1.0  # multiplies the global per-app budget only (a storm in that scope alone)
    tenant_tier: TenantTier | None = None  # None: derived from the tenant's user count (S <50, M <=500, L >500)
    retry_after: bool = True  # False: 429s carry no Retry-After (clients must back off on their own)


@dataclass(slots=True)
class FaultSettings:
    """Transport and server faults; every decision is a pure function of `seed` and the request, so reruns match."""

    seed: int = 0
    latency_ms: float = 0.0  # added to every matching request
    tail_rate: float = 0.0  # share of requests that also get `tail_ms` of extra latency (the long tail)
    tail_ms: float = 0.0
    error_rate: float = 0.0  # share answered 503 or 504 (half each)
    retry_after_rate: float = 0.5  # share of injected 503s that carry Retry-After
    drop_rate: float = 0.0  # share whose connection is closed before any response byte
    truncate_rate: float = 0.0  # share whose body is cut short after a full Content-Length header
    empty_page_rate: float = 0.0  # share of list pages served empty but with a nextLink (legal in Graph)
    malformed_rate: float = 0.0  # share of 200 answers whose JSON is cut short (Content-Length matches the cut)
    path_prefix: str = ""  # only requests whose /v1.0 path starts with this (e.g. "/users") are affected
    huge_page_bytes: int = 0  # list pages with records are padded to about this size, streamed (a hostile page)
    huge_page_gzip: bool = True  # False: the huge page goes uncompressed with its Content-Length announced

    def active(self) -> bool:
        return any(
            v > 0
            for v in (self.latency_ms, self.tail_rate, self.error_rate, self.drop_rate, self.truncate_rate,
                      self.empty_page_rate, self.malformed_rate, self.huge_page_bytes)
        )


@dataclass(slots=True)
class GraphSettings:
    """Settings of one emulator app.

    `public_base_url` is normally None: nextLinks are then built from the request's own scheme and Host, which
    is right for a server bound to an ephemeral port. Set it only when clients reach the app through a proxy.
    """

    public_base_url: str | None = None
    state_dir: Path | None = None
    authority_url: str = "https://login.microsoftonline.com"
    directory_delta_page_size: int = 100
    delta_token_ttl_seconds: float = 7 * 24 * 3600.0  # directory objects; Outlook/drive tokens never age out
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    faults: FaultSettings = field(default_factory=FaultSettings)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir) if self.state_dir else None
        return data


def update_dataclass(target: Any, values: dict[str, Any], where: str) -> None:
    """Apply a JSON patch of known fields, naming the bad field and the fix on error (admin API input)."""
    known = {f.name: f for f in fields(target)}
    for name, value in values.items():
        if name not in known:
            raise ValueError(f"{where}.{name}: unknown setting; expected one of {sorted(known)}")
        declared = str(known[name].type)
        if declared == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{where}.{name}: expected true or false, got {value!r}")
        elif declared in ("int", "float"):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}.{name}: expected a non-negative number, got {value!r}")
            if name.endswith("_rate") and value > 1:
                raise ValueError(f"{where}.{name}: a rate is a share between 0 and 1, got {value!r}")
            if name in ("scale", "budget_scale", "global_budget_scale") and value == 0:
                raise ValueError(f"{where}.{name}: must be positive (0.1 = ten times shorter/smaller)")
            value = int(value) if declared == "int" else float(value)
        elif name == "tenant_tier":
            if value not in (None, "S", "M", "L"):
                raise ValueError(f"{where}.{name}: expected null, 'S', 'M' or 'L', got {value!r}")
        elif declared == "str" and not isinstance(value, str):
            raise ValueError(f"{where}.{name}: expected a string, got {value!r}")
        setattr(target, name, value)
