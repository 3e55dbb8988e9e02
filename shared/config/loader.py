"""Read settings from the environment and report every problem at once, each naming the setting and the fix.

A misconfigured deployment should fail with one readable list, not a stack trace that reveals one problem per
redeploy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.config.model import Settings
from shared.config.specs import SETTINGS, SETTINGS_BY_NAME
from shared.streams import CATALOG


class ConfigError(Exception):
    """All configuration problems found, one per line; never includes a secret (settings hold only names)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [f"{len(self.problems)} configuration problem(s):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._render()


def _raw_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """Known settings that are set and non-empty (Bicep writes empty strings for unused optional ones)."""
    raw: dict[str, str] = {}
    for spec in SETTINGS:
        value = environ.get(spec.name)
        if value is not None and value.strip() != "":
            raw[spec.name] = value.strip()
    return raw


def _describe(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    name = loc[0] if loc else "settings"
    spec = SETTINGS_BY_NAME.get(name)
    where = ".".join(p for p in loc if p != "[key]")
    msg = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        return f"{name} is not set; set it: {spec.description if spec else ''}".rstrip()
    if name == "SYNC_STREAMS_CONFIG" and loc[-1:] == ["[key]"]:
        return f"{where}: unknown stream name; use one of {', '.join(CATALOG)}"
    if error.get("type") in ("literal_error", "greater_than_equal", "less_than_equal", "int_parsing",
                             "extra_forbidden", "too_short", "string_type", "list_type", "tuple_type", "dict_type"):
        hint = spec.description if spec else ""
        if name == "SYNC_STREAMS_CONFIG":
            hint = 'per stream only "select" (list of names), "page_size" (100-999), "date_window" {start, end}'
        return f"{where}: {msg}; fix: {hint}"
    return f"{where}: {msg}"


def _window_problem(label: str, start: datetime | None, end: datetime | None) -> str | None:
    if start is not None and end is not None and start >= end:
        return f"{label}: start {start.isoformat()} is not before end {end.isoformat()}; swap or widen the window"
    return None


def _cross_problems(raw: Mapping[str, str], settings: Settings | None) -> list[str]:
    problems: list[str] = []
    cred = raw.get("GRAPH_CREDENTIAL_TYPE", "secret")
    if cred != "managed_identity":
        for name in ("GRAPH_CLIENT_ID", "KEY_VAULT_URL"):
            if name not in raw:
                problems.append(f"{name} is not set; it is required with GRAPH_CREDENTIAL_TYPE={cred}: "
                                f"{SETTINGS_BY_NAME[name].description}")
    if settings is None:
        return problems
    if settings.credential_type == "managed_identity":
        others = [t for t in settings.tenant_ids if t != settings.app_tenant_for(settings.tenant_ids[0])]
        if len(settings.tenant_ids) > 1 or others:
            problems.append("GRAPH_TENANT_IDS: a managed identity can only read its own tenant; list one tenant "
                            "(equal to GRAPH_APP_TENANT_ID) or use GRAPH_CREDENTIAL_TYPE=secret/certificate")
    window = _window_problem("SYNC_START_TIME/SYNC_END_TIME", settings.start_time, settings.end_time)
    if window:
        problems.append(window)
    for stream, options in settings.streams_config.items():
        if options.date_window is not None:
            if CATALOG[stream].date_column is None:
                dated = [s.name for s in CATALOG.values() if s.date_column]
                problems.append(f"SYNC_STREAMS_CONFIG.{stream}.date_window: {stream} has no date column; "
                                f"remove it (dated streams: {', '.join(dated)})")
            else:
                window = _window_problem(f"SYNC_STREAMS_CONFIG.{stream}.date_window", options.date_window.start,
                                         options.date_window.end)
                if window:
                    problems.append(window)
    return problems


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `environ` (default: the process environment); raises ConfigError listing every problem."""
    raw = _raw_settings(os.environ if environ is None else environ)
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems += [_describe(e) for e in exc.errors(include_url=False)]
    problems += [p for p in _cross_problems(raw, settings) if p not in problems]
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings


_OVERRIDE_SETTINGS = {
    "streams": "SYNC_STREAMS",
    "start_time": "SYNC_START_TIME",
    "end_time": "SYNC_END_TIME",
    "user_filter": "SYNC_USER_FILTER",
}


def with_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """Settings for one run: the POST /api/syncs body replaces the matching settings, validated the same way."""
    relevant = {k: v for k, v in overrides.items() if k in _OVERRIDE_SETTINGS and v is not None}
    if not relevant:
        return settings
    raw: dict[str, Any] = settings.model_dump(by_alias=True)
    for key, value in relevant.items():
        raw[_OVERRIDE_SETTINGS[key]] = ",".join(value) if isinstance(value, list | tuple) else value
    try:
        updated = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors(include_url=False)]) from None
    problems = _cross_problems({k: str(v) for k, v in raw.items() if v is not None}, updated)
    if problems:
        raise ConfigError(problems)
    return updated
