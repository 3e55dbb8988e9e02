"""Validation of a `POST /api/syncs` body: pure, and every problem reported at once, each naming field and fix."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_BODY_BYTES = 16 * 1024
MAX_FILTER_CHARS = 2048
FIELDS = ("tenant_id", "streams", "start_time", "end_time", "user_filter", "full")


@dataclass(slots=True)
class SyncRequest:
    tenant_id: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse_sync_request(body: bytes, streams: Collection[str], tenants: Collection[str]) -> SyncRequest:
    """Overrides for one run from the request body (empty body = a normal run with the app settings)."""
    request = SyncRequest()
    problems = request.problems
    if len(body) > MAX_BODY_BYTES:
        problems.append(f"body: {len(body)} bytes is over the {MAX_BODY_BYTES} byte limit; send only the "
                        f"fields {', '.join(FIELDS)}")
        return request
    data: Any = {}
    if body.strip():
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"body: not valid JSON ({exc}); send a JSON object such as "
                            '{"streams": ["users"], "full": true}')
            return request
    if not isinstance(data, dict):
        problems.append(f"body: expected a JSON object, got {type(data).__name__}; wrap the fields in {{...}}")
        return request
    for key in sorted(set(data) - set(FIELDS)):
        problems.append(f"{key}: unknown field; allowed fields are {', '.join(FIELDS)}")

    request.tenant_id = _tenant(data.get("tenant_id"), tenants, problems)
    if "streams" in data:
        chosen = _streams(data["streams"], streams, problems)
        if chosen is not None:
            request.overrides["streams"] = chosen
    start = _time(data, "start_time", problems)
    end = _time(data, "end_time", problems)
    if start is not None and end is not None and start >= end:
        problems.append(f"start_time: {data['start_time']} is not before end_time {data['end_time']}; "
                        "swap them or widen the window")
    for key, value in (("start_time", start), ("end_time", end)):
        if value is not None:
            request.overrides[key] = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if "user_filter" in data:
        value = data["user_filter"]
        if not isinstance(value, str) or not value.strip():
            problems.append("user_filter: must be a non-empty string, a Graph $filter on users such as "
                            "\"department eq 'Sales'\"")
        elif len(value) > MAX_FILTER_CHARS:
            problems.append(f"user_filter: {len(value)} characters is over {MAX_FILTER_CHARS}; scope users with "
                            "fewer clauses or SYNC_USER_GROUPS")
        else:
            request.overrides["user_filter"] = value.strip()
    if "full" in data:
        if not isinstance(data["full"], bool):
            problems.append("full: must be true or false (JSON boolean, not a string)")
        elif data["full"]:
            request.overrides["full"] = True
    return request


def _tenant(value: Any, tenants: Collection[str], problems: list[str]) -> str | None:
    if value is None:
        if len(tenants) == 1:
            return next(iter(tenants))
        problems.append(f"tenant_id: required because GRAPH_TENANT_IDS lists {len(tenants)} tenants; "
                        f"use one of {', '.join(tenants)}")
        return None
    try:
        tenant = str(uuid.UUID(str(value)))
    except ValueError:
        problems.append(f"tenant_id: {value!r} is not a GUID; use one of {', '.join(tenants)}")
        return None
    if tenant not in tenants:
        problems.append(f"tenant_id: {tenant} is not in GRAPH_TENANT_IDS; use one of {', '.join(tenants)}")
        return None
    return tenant


def _streams(value: Any, streams: Collection[str], problems: list[str]) -> list[str] | None:
    if value == "all" or value == ["all"]:
        return list(streams)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.append('streams: must be a non-empty list of stream names or "all"; GET /api/streams lists them')
        return None
    unknown = [v for v in value if v not in streams]
    if unknown:
        problems.append(f"streams: unknown stream(s) {', '.join(unknown)}; valid: {', '.join(streams)}")
        return None
    return list(dict.fromkeys(value))


def _time(data: dict[str, Any], key: str, problems: list[str]) -> datetime | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str):
        problems.append(f"{key}: must be an ISO 8601 string such as 2024-01-31T00:00:00Z")
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{key}: {value!r} is not ISO 8601; use e.g. 2024-01-31T00:00:00Z")
        return None
    if parsed.tzinfo is None:
        problems.append(f"{key}: {value!r} has no time zone; add Z for UTC, e.g. {value}Z")
        return None
    return parsed
