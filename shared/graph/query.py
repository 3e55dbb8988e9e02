"""The first URL of a partition: path, `$select`, `$top`, date `$filter`. Pure; paging then follows nextLinks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from shared.config import Settings
from shared.streams import StreamSpec


def odata_time(value: datetime) -> str:
    """OData DateTimeOffset literal in UTC with millisecond precision (what Graph stores)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def select_columns(settings: Settings, spec: StreamSpec) -> tuple[str, ...] | None:
    """Configured (or default) columns plus the record's own key, which the lake needs to de-duplicate."""
    chosen = settings.options_for(spec.name).select or spec.default_select
    if chosen is None:
        return None
    return tuple(dict.fromkeys((spec.id_column, *chosen)))


def date_filter(settings: Settings, spec: StreamSpec) -> str | None:
    start, end = settings.date_window_for(spec.name)
    if spec.date_column is None or (start is None and end is None):
        return None
    low_op, high_op = spec.date_ops
    clauses = []
    if start is not None:
        # `gt` is exclusive: step back one millisecond so a record stamped exactly at `start` is kept.
        low = start - timedelta(milliseconds=1) if low_op == "gt" else start
        clauses.append(f"{spec.date_column} {low_op} {odata_time(low)}")
    if end is not None:
        clauses.append(f"{spec.date_column} {high_op} {odata_time(end)}")
    return " and ".join(clauses)


_SAFE = "$,'/:()"


def encode_query(params: list[tuple[str, str]]) -> str:
    """`$name=value` pairs with values percent-encoded (spaces as %20; `$`, `,`, `'`, `/` kept readable)."""
    return "&".join(f"{name}={quote(value, safe=_SAFE)}" for name, value in params)


def partition_url(settings: Settings, spec: StreamSpec, parent_id: str | None) -> str:
    params: list[tuple[str, str]] = []
    columns = select_columns(settings, spec)
    if columns:
        params.append(("$select", ",".join(columns)))
    top = settings.page_size_for(spec.name)
    if top is not None:
        params.append(("$top", str(top)))
    flt = date_filter(settings, spec)
    if flt:
        params.append(("$filter", flt))
        if spec.date_orderby:
            params.append(("$orderby", spec.date_orderby))
    url = settings.graph_root + spec.path_for(parent_id)
    return f"{url}?{encode_query(params)}" if params else url


def ids_url(settings: Settings, path: str, *, top: int | None, flt: str | None = None) -> tuple[str, dict[str, str]]:
    """URL listing only ids (parent listings); an advanced `$filter` needs `$count` + ConsistencyLevel: eventual."""
    params: list[tuple[str, str]] = [("$select", "id")]
    headers: dict[str, str] = {}
    if top is not None:
        params.append(("$top", str(top)))
    if flt:
        params.append(("$filter", flt))
        params.append(("$count", "true"))
        headers["ConsistencyLevel"] = "eventual"
    return f"{settings.graph_root}{path}?{encode_query(params)}", headers
