"""Pure parsing of OData system query options and `$select` projection, with Graph's errors for bad input."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from devstack.graph import odata_filter
from devstack.graph.endpoints import Endpoint
from devstack.graph.errors import GraphError, bad_request, unsupported_query

KNOWN_OPTIONS = frozenset({
    "$top", "$skip", "$skiptoken", "$select", "$filter", "$orderby", "$count", "$expand", "$search", "$format",
    "$deltatoken",
})


def parse_query_string(raw: str) -> list[tuple[str, str]]:
    """Pairs in order, decoded like Graph's front end does: `+` is a space (a literal plus must be sent as %2B,
    the classic pitfall with unencoded time-zone offsets)."""
    pairs: list[tuple[str, str]] = []
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


@dataclass(slots=True)
class Options:
    top: int | None = None
    skip: int = 0
    skiptoken: str | None = None
    deltatoken: str | None = None
    drive_token: str | None = None
    select: tuple[str, ...] | None = None
    filter_text: str | None = None
    filter: odata_filter.Node | None = None
    orderby: tuple[tuple[str, bool], ...] = ()  # (property path, descending)
    count: bool = False
    expand: str | None = None
    start: str | None = None  # calendarView window
    end: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # non-system parameters, kept for links


def _option_name(name: str) -> str:
    low = name.lower()
    # Graph v1.0 accepts system query options with or without the `$` prefix.
    if not low.startswith("$") and f"${low}" in KNOWN_OPTIONS:
        return f"${low}"
    return low


def _filter_error(ep: Endpoint, message: str) -> GraphError:
    if ep.family == "outlook":
        return GraphError(400, "BadRequest", f"Invalid filter clause: {message}")
    return GraphError(400, "BadRequest", f"Invalid filter clause: {message}")


def parse_options(ep: Endpoint, pairs: list[tuple[str, str]], headers: Mapping[str, str]) -> Options:
    opts = Options()
    seen: set[str] = set()
    for raw_name, value in pairs:
        name = _option_name(raw_name)
        if name.startswith("$") and name not in KNOWN_OPTIONS:
            raise bad_request(f"Query option '{raw_name}' is not supported.")
        if name in seen and name.startswith("$"):
            raise bad_request(f"Query option '{raw_name}' was specified more than once, but it must be specified "
                              "at most once.")
        seen.add(name)
        if name == "$top":
            if not value.isdigit() or int(value) < 1:
                raise bad_request(f"Invalid value '{value}' for $top query option found. The $top query option "
                                  "requires a non-negative integer value.")
            opts.top = int(value)
        elif name == "$skip":
            if ep.paging.style == "skiptoken" or ep.family == "directory":
                raise GraphError(400, "Request_BadRequest", "'$skip' is not supported by the service.")
            if not value.isdigit():
                raise bad_request(f"Invalid value '{value}' for $skip query option found.")
            opts.skip = int(value)
        elif name == "$skiptoken":
            opts.skiptoken = value
        elif name == "$deltatoken":
            opts.deltatoken = value
        elif name == "$select":
            if not ep.select_allowed:
                raise bad_request("The $select query option is not supported for this request.", "ErrorInvalidUrlQuery")
            opts.select = tuple(p.strip() for p in value.split(",") if p.strip())
            if not opts.select:
                raise bad_request("The $select query option is empty.")
        elif name == "$filter":
            opts.filter_text = value
            try:
                opts.filter = odata_filter.parse_filter(value)
            except odata_filter.FilterError as exc:
                raise _filter_error(ep, str(exc)) from exc
            _check_filter(ep, opts.filter)
        elif name == "$orderby":
            opts.orderby = _parse_orderby(ep, value)
        elif name == "$count":
            if value.lower() not in ("true", "false"):
                raise bad_request(f"Invalid value '{value}' for $count query option found. Valid values are "
                                  "'true' and 'false'.")
            opts.count = value.lower() == "true"
        elif name == "$expand":
            opts.expand = value
            raise GraphError(400, "Request_UnsupportedQuery",
                             "$expand is not available here: page through the relationship instead.")
        elif name == "$search":
            raise unsupported_query("$search is not supported for this request.")
        elif name == "$format":
            if value.lower() != "json":
                raise bad_request(f"Invalid value '{value}' for $format.")
        elif name == "startdatetime":
            opts.start = value
        elif name == "enddatetime":
            opts.end = value
        elif name == "token":
            opts.drive_token = value
        else:
            opts.extra[raw_name] = value
    if opts.count and ep.count_needs_eventual and headers.get("ConsistencyLevel", "").lower() != "eventual":
        raise unsupported_query(
            "Count is not supported because the 'ConsistencyLevel:eventual' header is missing. Refer to "
            "https://aka.ms/graph-docs/advanced-queries for more information"
        )
    if ep.window_required:
        _check_window(opts)
    if ep.orderby_in_filter and opts.orderby and opts.filter is not None:
        _check_inefficient_filter(opts)
    return opts


def _check_inefficient_filter(opts: Options) -> None:
    """user-list-messages.md: with both options, the $orderby properties must appear in the $filter, in the same
    order, before any other property; otherwise Exchange answers 400 InefficientFilter."""
    assert opts.filter is not None
    in_filter = [p.lower() for p in odata_filter.property_order(opts.filter)]
    ordered = [p.split("/")[0].lower() for p, _ in opts.orderby]
    if in_filter[: len(ordered)] != ordered:
        raise GraphError(400, "InefficientFilter", "The restriction or sort order is too complex for this operation.")


def _check_filter(ep: Endpoint, node: odata_filter.Node) -> None:
    if ep.filter_props is not None:
        props = odata_filter.root_properties(node)
        bad = sorted(p for p in props if p not in ep.filter_props)
        if bad or (not props and ep.filter_props == frozenset()):
            raise unsupported_query(f"Unsupported query: $filter on '{', '.join(bad) or 'this resource'}' is not "
                                    "supported for this request.")
    if ep.filter_ops is not None:
        ops = odata_filter.operators(node) - ep.filter_ops
        if ops:
            raise unsupported_query(f"Unsupported query: operator(s) {', '.join(sorted(ops))} not supported in "
                                    "$filter for this request.")


def _parse_orderby(ep: Endpoint, value: str) -> tuple[tuple[str, bool], ...]:
    keys: list[tuple[str, bool]] = []
    for part in value.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise bad_request(f"Invalid $orderby clause '{value}'.")
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    allowed = {p.lower() for p in ep.orderby}
    if ep.filter_needs_orderby and any(not desc for _, desc in keys):
        raise bad_request("Only descending order is supported for $orderby on chat messages.")
    for prop, _ in keys:
        if prop.lower() not in allowed:
            if ep.family == "outlook":
                raise GraphError(400, "ErrorInvalidProperty", f"The property '{prop}' does not support sorting.")
            raise unsupported_query("Sorting not supported for current query.")
    return tuple(keys)


def _check_window(opts: Options) -> None:
    if not opts.start or not opts.end:
        if opts.skiptoken or opts.deltatoken:
            return
        raise GraphError(400, "ErrorInvalidParameter", "This request requires a time window specified by the query "
                         "string parameters StartDateTime and EndDateTime.")
    for label, value in (("StartDateTime", opts.start), ("EndDateTime", opts.end)):
        try:
            odata_filter.parse_datetime(value)
        except ValueError as exc:
            raise GraphError(400, "ErrorInvalidParameter",
                             f"The value '{value}' of parameter '{label}' is invalid.") from exc


def effective_top(ep: Endpoint, requested: int | None) -> int | None:
    """Default when absent; over-maximum values are clamped to the maximum (what users/groups do)."""
    if ep.paging.style == "none":
        return None
    top = requested if requested is not None else ep.paging.default
    if top is not None and ep.paging.maximum is not None:
        top = min(top, ep.paging.maximum)
    return top


def check_select(ep: Endpoint, select: Iterable[str], sample: Mapping[str, Any] | None) -> None:
    """Unknown properties are a 400, as in Graph (checked against a sample record of the collection)."""
    if sample is None:
        return
    known = {k.lower() for k in sample}
    for prop in select:
        if prop == "*" or prop.lower() in known or prop.lower() in ("members", "owners", "manager"):
            continue
        if ep.family == "outlook":
            raise GraphError(400, "RequestBroker--ParseUri",
                             f"Could not find a property named '{prop}' on type 'Microsoft.OutlookServices."
                             f"{ep.entity[:1].upper()}{ep.entity[1:]}'.")
        raise GraphError(400, "Request_BadRequest",
                         f"Could not find a property named '{prop}' on type 'microsoft.graph.{ep.entity}'.")


class Projector:
    """`$select` (case-insensitive names, `*` = all), else the endpoint's default set, else everything.

    `@odata.*` annotations and the `always` properties (ids in Outlook and delta payloads) are kept. The plan of
    which keys to copy is cached per record layout: records of one kind share their keys, so a 1,000-record page
    resolves names once instead of once per record.
    """

    def __init__(self, select: tuple[str, ...] | None, *, default: tuple[str, ...] | None,
                 always: tuple[str, ...] = (), hidden: frozenset[str] = frozenset()) -> None:
        fields = select if select is not None else default
        self._all = fields is None or "*" in fields
        self._fields = fields or ()
        self._always = always
        self._hidden = hidden
        self._plans: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _plan(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        if self._all:
            return tuple(k for k in keys if k not in self._hidden)
        lower = {k.lower(): k for k in keys}
        plan = [k for k in keys if k.startswith("@odata.")]
        for name in (*self._always, *self._fields):
            key = lower.get(name.lower()) if name not in self._always else (name if name in keys else None)
            if key is not None and key not in plan and key not in self._hidden:
                plan.append(key)
        return tuple(plan)

    def __call__(self, record: Mapping[str, Any]) -> dict[str, Any]:
        keys = tuple(record)
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plans[keys] = self._plan(keys)
        return {k: record[k] for k in plan}


def project(
    record: Mapping[str, Any],
    select: tuple[str, ...] | None,
    *,
    default: tuple[str, ...] | None,
    always: tuple[str, ...] = (),
    hidden: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """One record through a `Projector` (see there)."""
    return Projector(select, default=default, always=always, hidden=hidden)(record)


def window_overlaps(record: Mapping[str, Any], start: str, end: str) -> bool:
    """calendarView semantics: the event overlaps [start, end)."""
    try:
        w_start = odata_filter.parse_datetime(start)
        w_end = odata_filter.parse_datetime(end)
        ev_start = odata_filter.parse_datetime(_event_time(record.get("start")))
        ev_end = odata_filter.parse_datetime(_event_time(record.get("end")))
    except (ValueError, TypeError):
        return False
    return ev_start < w_end and ev_end > w_start


def _event_time(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("dateTime"))
    return str(value)
