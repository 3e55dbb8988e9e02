"""The aiohttp application: Graph's HTTP surface (headers, gzip, transport faults) around `GraphService`,
`POST /v1.0/$batch`, and the loopback-only admin API under `/_admin`."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from typing import Any

import orjson
from aiohttp import web

from devstack.graph import batch, faults
from devstack.graph.errors import GraphError
from devstack.graph.faults import NO_FAULT, FaultDecision
from devstack.graph.messages import GraphRequest, GraphResponse, error_response
from devstack.graph.query import parse_query_string
from devstack.graph.service import GraphService
from devstack.graph.settings import GraphSettings, update_dataclass
from devstack.tenant.model import Tenant
from devstack.tokens import TokenVerifier

SERVICE_KEY = web.AppKey("graph_service", GraphService)
ODATA_JSON = batch.ODATA_JSON
_DIAGNOSTIC = orjson.dumps(
    {"ServerInfo": {"DataCenter": "Local Devstack", "Slice": "E", "Ring": "1", "ScaleUnit": "000",
                    "RoleInstance": "DEVSTACK0001"}}
).decode()
_GZIP_MIN_BYTES = 1024


def create_app(*, tenant: Tenant, verifier: TokenVerifier, settings: GraphSettings) -> web.Application:
    """A Graph v1.0 emulator for `tenant`; mount it as-is (it owns `/v1.0` and `/_admin`)."""
    service = GraphService(tenant=tenant, verifier=verifier, settings=settings)
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[SERVICE_KEY] = service
    app.router.add_route("*", "/v1.0/{tail:.*}", _graph)
    app.router.add_route("*", "/beta/{tail:.*}", _beta)
    app.router.add_get("/_admin/health", _admin_health)
    app.router.add_get("/_admin/settings", _admin_get_settings)
    app.router.add_route("PATCH", "/_admin/settings", _admin_patch_settings)
    app.router.add_post("/_admin/settings", _admin_patch_settings)
    app.router.add_post("/_admin/tenant", _admin_tenant)
    app.router.add_post("/_admin/delta/expire", _admin_expire)
    app.router.add_get("/_admin/counters", _admin_counters)
    app.router.add_post("/_admin/counters/reset", _admin_reset)
    app.router.add_post("/_admin/throttle/reset", _admin_throttle_reset)
    return app


def service_of(app: web.Application) -> GraphService:
    return app[SERVICE_KEY]


# --- Graph surface ------------------------------------------------------------------------------------------------
def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _fault_for(service: GraphService, method: str, target: str, path: str) -> FaultDecision:
    settings = service.settings.faults
    if not faults.applies(settings, path):
        return NO_FAULT
    key = f"{method} {target}"
    if len(service.fault_occurrences) > 200_000:  # bounded memory on endless runs; restarts every count at 0
        service.fault_occurrences.clear()
    occurrence = service.fault_occurrences.get(key, 0)
    service.fault_occurrences[key] = occurrence + 1
    decision = faults.decide(settings, method, target, occurrence)
    for name in ("drop", "truncate", "empty_page", "malformed"):
        if getattr(decision, name):
            service.counters.faults[name] += 1
    if decision.status:
        service.counters.faults[str(decision.status)] += 1
    return decision


async def _graph(request: web.Request) -> web.StreamResponse:
    service = service_of(request.app)
    arrived = time.monotonic()
    raw = request.raw_path
    path_qs = raw[len("/v1.0"):] if raw.lower().startswith("/v1.0") else raw
    path, _, qs = path_qs.partition("?")
    req = GraphRequest(request.method, path or "/", parse_query_string(qs), request.headers, _base_url(request))
    fault = _fault_for(service, request.method, path_qs, path)
    if fault.drop:
        if fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("fault injection: connection dropped")
    if path.strip("/").lower() == "$batch":
        if fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        response = await _batch(service, request, req)
    else:
        response = await service.handle(req, fault)
    service.counters.record(response.endpoint, response.status, response.throttle_scope,
                            units=response.headers.get("x-ms-resource-unit"), at=arrived)
    pad_to = fault.pad_to if response.status == 200 and faults.paddable(response.body) else 0
    if pad_to:
        service.counters.faults["huge_page"] += 1
    return await _send(request, req, response, truncate=fault.truncate, malformed=fault.malformed, pad_to=pad_to,
                       pad_gzip=fault.pad_gzip)


async def _batch(service: GraphService, request: web.Request, req: GraphRequest) -> GraphResponse:
    service.counters.batches += 1
    if request.method != "POST":
        return batch.envelope_error(req, GraphError(405, "BadRequest", "The batch endpoint accepts POST only."))
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return batch.envelope_error(req, GraphError(400, "BadRequest", "Invalid batch payload format."))
    try:
        items = batch.validate(body)
    except GraphError as err:
        return batch.envelope_error(req, err)
    if "Authorization" in req.headers:  # checked once for every item that carries the envelope's token
        req.auth = service.authenticate(req)

    async def handle(inner: GraphRequest) -> GraphResponse:
        fault = _fault_for(service, inner.method, "$batch:" + inner.raw_path, inner.raw_path)
        fault = FaultDecision(fault.delay_seconds, fault.status, fault.retry_after, empty_page=fault.empty_page)
        result = await service.handle(inner, fault)
        service.counters.record(result.endpoint, result.status, result.throttle_scope, batch_item=True,
                                units=result.headers.get("x-ms-resource-unit"))
        return result

    return await batch.run(req, items, handle, service.settings.faults.seed, service.mailbox_key)


async def _beta(request: web.Request) -> web.StreamResponse:
    raw = request.raw_path
    req = GraphRequest(request.method, raw, [], request.headers, _base_url(request))
    err = GraphError(400, "BadRequest", "The local Graph emulator serves v1.0 only; use /v1.0.")
    return await _send(request, req, error_response(req, err), truncate=False)


async def _send(request: web.Request, req: GraphRequest, response: GraphResponse, *, truncate: bool,
                malformed: bool = False, pad_to: int = 0, pad_gzip: bool = True) -> web.StreamResponse:
    headers = {
        "Cache-Control": "no-cache",
        "request-id": req.request_id,
        "client-request-id": req.client_request_id,
        "x-ms-ags-diagnostic": _DIAGNOSTIC,
        "Strict-Transport-Security": "max-age=31536000",
        "OData-Version": "4.0",
        "Vary": "Accept-Encoding",
    }
    headers.update(response.headers)
    if pad_to and response.body is not None:
        headers["Content-Type"] = ODATA_JSON
        return await faults.send_padded(request, response.status, headers, response.body, pad_to, gzip=pad_gzip)
    data = b"" if response.body is None else orjson.dumps(response.body)
    if malformed and response.status == 200 and len(data) > 2:
        data = data[: len(data) // 2]  # well-framed HTTP, broken JSON
    if response.body is not None:
        headers["Content-Type"] = ODATA_JSON
    if len(data) >= _GZIP_MIN_BYTES and "gzip" in request.headers.get("Accept-Encoding", "").lower():
        data = gzip.compress(data, compresslevel=3)
        headers["Content-Encoding"] = "gzip"
    if not truncate or len(data) < 2:
        return web.Response(status=response.status, body=data, headers=headers)
    stream = web.StreamResponse(status=response.status, headers=headers)
    stream.content_length = len(data)
    await stream.prepare(request)
    await stream.write(data[: len(data) // 2])
    if request.transport is not None:
        request.transport.close()
    raise ConnectionResetError("fault injection: body truncated")


# --- admin API ----------------------------------------------------------------------------------------------------
def _loopback_only(request: web.Request) -> None:
    if request.remote not in ("127.0.0.1", "::1", "localhost"):
        raise web.HTTPForbidden(text="the admin API answers loopback clients only")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data, default=str), content_type="application/json")


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"request body is not JSON: {exc}") from None


async def _admin_health(request: web.Request) -> web.Response:
    _loopback_only(request)
    svc = service_of(request.app)
    return _json({"status": "ok", "tenant_id": svc.tenant.tenant_id, "seq": svc.tenant.current_seq()})


async def _admin_get_settings(request: web.Request) -> web.Response:
    _loopback_only(request)
    return _json(service_of(request.app).settings.to_json())


async def _admin_patch_settings(request: web.Request) -> web.Response:
    """Body: {"throttle": {...}, "faults": {...}, and top-level scalars such as directory_delta_page_size}."""
    _loopback_only(request)
    svc = service_of(request.app)
    patch = await _read_json(request)
    if not isinstance(patch, dict):
        return _json({"error": "body must be a JSON object"}, 400)
    settings = svc.settings
    try:
        for section in ("throttle", "faults"):
            if section in patch:
                value = patch.pop(section)
                if not isinstance(value, dict):
                    raise ValueError(f"{section}: expected an object of settings")
                update_dataclass(getattr(settings, section), value, section)
        allowed = {"public_base_url", "directory_delta_page_size", "delta_token_ttl_seconds", "authority_url"}
        unknown = set(patch) - allowed
        if unknown:
            raise ValueError(f"{sorted(unknown)}: unknown setting(s); expected throttle, faults or {sorted(allowed)}")
        for name, value in patch.items():
            if name == "public_base_url" and value is not None and not isinstance(value, str):
                raise ValueError("public_base_url: expected a URL string or null")
            if name in ("directory_delta_page_size", "delta_token_ttl_seconds") and (
                not isinstance(value, (int, float)) or value <= 0
            ):
                raise ValueError(f"{name}: expected a positive number, got {value!r}")
            setattr(settings, name, int(value) if name == "directory_delta_page_size" else value)
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    svc.fault_occurrences.clear()
    return _json(settings.to_json())


async def _admin_tenant(request: web.Request) -> web.Response:
    """Body: one tenant op or {"ops": [...]}; ops are the tenant's own (see devstack.tenant)."""
    _loopback_only(request)
    svc = service_of(request.app)
    body = await _read_json(request)
    ops = body.get("ops") if isinstance(body, dict) and "ops" in body else [body]
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        return _json({"error": "expected an op object or {\"ops\": [op, ...]}"}, 400)
    results = []
    try:
        for op in ops:
            results.append(svc.tenant.apply(op))
    except (ValueError, KeyError, TypeError) as exc:
        return _json({"error": str(exc), "applied": len(results)}, 400)
    return _json({"results": results, "seq": svc.tenant.current_seq()})


async def _admin_expire(request: web.Request) -> web.Response:
    """Body {} expires every delta token; {"kind": "users"} or {"kind": "folderMessages", "parent_ids": [u, f]}
    expires one partition's tokens."""
    _loopback_only(request)
    svc = service_of(request.app)
    body = await _read_json(request)
    if not isinstance(body, dict):
        return _json({"error": "body must be a JSON object"}, 400)
    kind = body.get("kind")
    if kind is None:
        svc.epochs.expire_all()
        return _json({"expired": "all"})
    parents = body.get("parent_ids", [])
    if not isinstance(kind, str) or not isinstance(parents, list):
        return _json({"error": "kind: expected a collection kind string; parent_ids: a list of ids"}, 400)
    key = svc.epochs.partition_key(kind, [str(p) for p in parents])
    svc.epochs.expire(key)
    return _json({"expired": key})


async def _admin_counters(request: web.Request) -> web.Response:
    _loopback_only(request)
    svc = service_of(request.app)
    snapshot = svc.counters.snapshot(svc.throttle.max_in_flight)
    if "timeline" in request.query:  # ?timeline: every request as [monotonic s, endpoint, status, units]
        snapshot["timeline"] = list(svc.counters.timeline)
    return _json(snapshot)


async def _admin_reset(request: web.Request) -> web.Response:
    _loopback_only(request)
    svc = service_of(request.app)
    svc.counters.reset()
    svc.throttle.max_in_flight.clear()
    return _json({"reset": True})


async def _admin_throttle_reset(request: web.Request) -> web.Response:
    _loopback_only(request)
    service_of(request.app).throttle.reset()
    return _json({"reset": True})
