"""Delta query rounds: the initial snapshot pages, then change rounds from the tenant's change log.

Token payload (signed, opaque to clients): endpoint `e`, parent ids `k`, the original query `q`, phase `ph`
(`i` snapshot page, `c` change-round page, `d` deltaLink), sequence numbers `s`/`u`, offset `o`, the epochs `g`
current at issue and the wall-clock issue time `t`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devstack.graph import cursors, odata_filter, paging, query
from devstack.graph import delta as rules
from devstack.graph.endpoints import Endpoint
from devstack.graph.errors import GraphError
from devstack.graph.faults import FaultDecision
from devstack.graph.messages import GraphRequest, GraphResponse
from devstack.tenant.model import Collection, Record

if TYPE_CHECKING:
    from devstack.graph.service import GraphService

_SAFE = "$,'()/:@!*-._~"

_GONE: dict[str, tuple[str, str]] = {
    "directory": ("resyncRequired", "The delta token is no longer valid, and the app must reset the sync state."),
    "outlook": ("syncStateNotFound", "The sync state generation is not found. The delta token is expired and data "
                "must be synchronized again."),
    "drive": ("resyncChangesApplyDifferences", "Resync required. Replace any local items with the server's version "
              "(including deletes) if you're sure that the service was up to date with your local changes when you "
              "last synced. Upload any local changes that the server doesn't know about."),
}


def _page_size(svc: GraphService, ep: Endpoint, opts: query.Options, headers: Mapping[str, str]) -> int:
    if ep.delta == "directory" and ep.family == "directory":
        return max(1, svc.settings.directory_delta_page_size)
    preferred = _max_page_size(headers)
    return query.effective_top(ep, opts.top if preferred is None else preferred) or 10


def _max_page_size(headers: Mapping[str, str]) -> int | None:
    for part in headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "odata.maxpagesize" and value.strip().isdigit():
            return int(value.strip())
    return None


def _initial_url(svc: GraphService, req: GraphRequest, q: Mapping[str, Any], drive: bool) -> str:
    params: list[tuple[str, str]] = []
    if q.get("sel"):
        params.append(("$select", ",".join(q["sel"])))
    if q.get("f"):
        params.append(("$filter", q["f"]))
    if q.get("ws"):
        params.append(("startDateTime", q["ws"]))
        params.append(("endDateTime", q["we"]))
    if not drive:
        params.append(("$deltatoken", ""))
    qs = "&".join(f"{quote(k, safe='$')}={quote(v, safe=_SAFE)}" for k, v in params)
    return f"{svc.base(req)}/v1.0{req.raw_path}" + (f"?{qs}" if qs else "")


def _link(svc: GraphService, req: GraphRequest, ep: Endpoint, payload: dict[str, Any], *, final: bool) -> str:
    token = svc.codec.delta(payload)
    name = "token" if ep.delta == "drive" else "$deltatoken" if final else "$skiptoken"
    return f"{svc.base(req)}/v1.0{req.raw_path}?{name}={token}"


def gone(svc: GraphService, req: GraphRequest, ep: Endpoint, q: Mapping[str, Any]) -> GraphError:
    code, message = _GONE[ep.delta or "directory"]
    return GraphError(410, code, message, headers={"Location": _initial_url(svc, req, q, ep.delta == "drive")})


def serve_delta(
    svc: GraphService,
    req: GraphRequest,
    ep: Endpoint,
    keys: tuple[str, ...],
    opts: query.Options,
    coll: Collection | None,
    parent_ids: tuple[str, ...],
    hidden: frozenset[str],
    fault: FaultDecision,
) -> GraphResponse:
    assert coll is not None
    partition = cursors.DeltaEpochs.partition_key(ep.kind or ep.name, list(parent_ids))
    epochs = list(svc.epochs.current(partition))
    token = opts.drive_token if ep.delta == "drive" else (opts.deltatoken or opts.skiptoken)
    context = svc.context_url(req, ep, keys, None)
    base_payload = {"e": ep.name, "k": list(parent_ids), "g": epochs}

    if token is not None and token.lower() == "latest":
        q = _fresh_query(svc, ep, opts, req.headers)
        payload = {**base_payload, "q": q, "ph": "d", "s": svc.tenant.current_seq(), "t": svc.wall_clock()}
        latest: dict[str, Any] = {"@odata.context": context, "value": [],
                                  "@odata.deltaLink": _link(svc, req, ep, payload, final=True)}
        return GraphResponse(200, latest, endpoint=ep.name)

    if token:
        try:
            state = svc.codec.open_delta(token)
        except cursors.BadToken:
            raise gone(svc, req, ep, _fresh_query(svc, ep, opts, req.headers, strict=False)) from None
        q = state.get("q") or {}
        if state.get("e") != ep.name or state.get("k") != list(parent_ids):
            raise gone(svc, req, ep, q)
        if state.get("g") != epochs:
            raise gone(svc, req, ep, q)
        age = svc.wall_clock() - float(state.get("t", 0))
        if ep.delta == "directory" and age > svc.settings.delta_token_ttl_seconds:
            raise gone(svc, req, ep, q)
        phase = state.get("ph")
    else:
        q = _fresh_query(svc, ep, opts, req.headers)
        state = {"ph": "i", "s": svc.tenant.current_seq(), "o": 0, "t": svc.wall_clock()}
        phase = "i"

    size = int(q.get("top") or 10)
    if token and ep.delta == "outlook" and (preferred := _max_page_size(req.headers)) is not None:
        # Outlook reads `Prefer: odata.maxpagesize` on every request of a round, nextLinks and deltaLinks included
        # (delta-query-messages.md sends it with each); without it the size the round started with applies.
        size = query.effective_top(ep, preferred) or size
    select = tuple(q["sel"]) if q.get("sel") else None
    # groups/delta tracks membership by default and when `members` is selected (group-delta.md examples).
    include_members = ep.name == "groups_delta" and (select is None or any(s.lower() == "members" for s in select))
    proj_select = tuple(s for s in select if s.lower() != "members") if select else None
    if include_members and select is not None and not proj_select:
        proj_select = ("id",)
    filt = query.parse_options(ep, [("$filter", q["f"])], {}).filter if q.get("f") else None
    window = (q["ws"], q["we"]) if q.get("ws") else None

    def keep(record: Mapping[str, Any]) -> bool:
        if window is not None and not query.window_overlaps(record, window[0], window[1]):
            return False
        return filt is None or odata_filter.matches(filt, record)

    project = query.Projector(proj_select, default=ep.default_select, always=("id",), hidden=hidden)

    body: dict[str, Any] = {"@odata.context": context}
    issued = float(state.get("t", svc.wall_clock()))
    if phase == "i":
        seq0 = int(state["s"])
        offset = int(state.get("o", 0))
        if fault.empty_page:
            result = paging.PageResult([], offset)
        else:
            needs_scan = filt is not None or window is not None
            result = paging.compute_page(coll, start=offset, top=size, predicate=keep if needs_scan else None)
        values = [project(r) for r in result.records]
        if include_members:
            for value in values:
                members = svc.tenant.collection("groupMembers", str(value["id"]))
                value["members@delta"] = rules.members_delta(members.iter_from(0) if members else [])
        if result.next_start is not None:
            payload = {**base_payload, "q": q, "ph": "i", "s": seq0, "o": result.next_start, "t": issued}
            return _respond(ep, body, values, "@odata.nextLink", _link(svc, req, ep, payload, final=False))
        payload = {**base_payload, "q": q, "ph": "d", "s": seq0, "t": svc.wall_clock()}
        return _respond(ep, body, values, "@odata.deltaLink", _link(svc, req, ep, payload, final=True))

    since = int(state["s"])
    upto = int(state["u"]) if phase == "c" else svc.tenant.current_seq()
    offset = int(state.get("o", 0)) if phase == "c" else 0
    changes = [c for c in coll.changes_since(since) if c.seq <= upto]
    # An id filter scopes the whole round, not only the records it can see: membership changes and deletions of
    # other objects stay out (group-delta.md: "$filter=id eq {value}" tracks changes for specific objects).
    id_scope = filt if filt is not None and ep.filter_props == frozenset({"id"}) else None
    rendered = []
    for entry in rules.compact(changes):
        if id_scope is not None and not odata_filter.matches(id_scope, {"id": entry.id}):
            continue
        item = rules.render(entry, style=ep.delta or "directory", entity=ep.entity, project=project,
                            include_members=include_members, keep=keep)
        if item is not None:
            rendered.append(item)
    if fault.empty_page and offset < len(rendered):
        page: list[Record] = []
        next_offset = offset
    else:
        page = rendered[offset:offset + size]
        next_offset = offset + len(page)
    if next_offset < len(rendered):
        payload = {**base_payload, "q": q, "ph": "c", "s": since, "u": upto, "o": next_offset, "t": issued}
        return _respond(ep, body, page, "@odata.nextLink", _link(svc, req, ep, payload, final=False))
    payload = {**base_payload, "q": q, "ph": "d", "s": upto, "t": svc.wall_clock()}
    return _respond(ep, body, page, "@odata.deltaLink", _link(svc, req, ep, payload, final=True))


def _respond(ep: Endpoint, body: dict[str, Any], values: list[Record], link_name: str, link: str) -> GraphResponse:
    """Directory and Outlook put the link before `value` (user-delta.md, group-delta.md); OneDrive after it."""
    if ep.delta == "drive":
        body["value"] = values
        body[link_name] = link
    else:
        body[link_name] = link
        body["value"] = values
    return GraphResponse(200, body, endpoint=ep.name)


def _fresh_query(
    svc: GraphService, ep: Endpoint, opts: query.Options, headers: Mapping[str, str], *, strict: bool = True
) -> dict[str, Any]:
    """The query a new round encodes into its tokens (clients never resend these parameters)."""
    return {
        "sel": list(opts.select) if opts.select else None,
        "f": opts.filter_text,
        "ws": opts.start,
        "we": opts.end,
        "top": _page_size(svc, ep, opts, headers),
    }
