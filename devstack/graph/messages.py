"""The transport-neutral request and response the pipeline works on (HTTP and `$batch` items alike)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.graph.errors import GraphError


@dataclass(slots=True)
class GraphRequest:
    method: str
    raw_path: str  # below /v1.0, still percent-encoded, e.g. "/users('a%2Fb')/messages"
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    base_url: str  # scheme://host[:port] clients use to reach the emulator
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_request_id: str = ""
    body: Any = None
    # the outcome of checking this request's bearer token when it was already checked for it (a `$batch` item
    # carrying the envelope's token): the token's claims, or the error the check produced
    auth: dict[str, Any] | GraphError | None = None

    def __post_init__(self) -> None:
        if not self.client_request_id:
            self.client_request_id = self.headers.get("client-request-id") or self.request_id


@dataclass(slots=True)
class GraphResponse:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    endpoint: str = "-"
    throttle_scope: str | None = None


def graph_date() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def error_response(req: GraphRequest, err: GraphError, endpoint: str = "-") -> GraphResponse:
    body = err.body(request_id=req.request_id, client_request_id=req.client_request_id, date=graph_date())
    return GraphResponse(err.status, body, dict(err.headers), endpoint)


