"""The ways a run starts and is watched: the timer, `POST /api/syncs`, `GET /api/syncs/{id}`, `GET /api/streams`.

Starters read app settings (orchestrators may not) and enforce one run per tenant through a fixed instance id:
the status check gives a friendly 409, and host.json `overridableExistingInstanceStates: NonRunningStates`
closes the race between two starts.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from orchestrators import names
from orchestrators import progress as pg
from orchestrators.requests import MAX_BODY_BYTES, parse_sync_request
from shared.config import ConfigError, Settings, load_settings, with_overrides
from shared.streams import CATALOG

log = logging.getLogger(__name__)
bp = df.Blueprint()

BUSY_STATES = frozenset({
    df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending,
    df.OrchestrationRuntimeStatus.ContinuedAsNew, df.OrchestrationRuntimeStatus.Suspended,
})
HttpHandler = Callable[..., Awaitable[func.HttpResponse]]
# Instance ids go into the extension's RPC URL: nothing that could add a path segment or a query parameter.
INSTANCE_ID = re.compile(r"[A-Za-z0-9_:-]{1,200}")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, indent=1), status_code=status, mimetype="application/json",
                             headers=headers)


def _settings() -> Settings:
    return load_settings()


async def _running(client: df.DurableOrchestrationClient, instance_id: str) -> bool:
    status = await client.get_status(instance_id)
    return bool(status) and status.runtime_status in BUSY_STATES


def rerun_limits(settings: Settings) -> dict[str, Any]:
    """The orchestration cannot read app settings (replays must not depend on the environment), so the starter
    hands it the re-run policy in its input."""
    return {"reruns": settings.partition_reruns, "rerun_delay_seconds": settings.rerun_delay}


async def start_run(client: df.DurableOrchestrationClient, tenant_id: str, trigger: str,
                    overrides: dict[str, Any], limits: dict[str, Any] | None = None) -> str | None:
    """Start the tenant's run; None when one is already running (the caller reports or skips)."""
    instance_id = names.run_instance_id(tenant_id)
    if await _running(client, instance_id):
        return None
    request: dict[str, Any] = {"tenant_id": tenant_id, "trigger": trigger, "overrides": overrides}
    if limits:
        request["limits"] = limits
    try:
        await client.start_new(names.SYNC_RUN, instance_id, request)
    except Exception:
        if await _running(client, instance_id):  # lost the race to another start
            return None
        raise
    return instance_id


def _timer(schedule: str) -> Callable[[Callable[..., Awaitable[None]]], Any]:
    decorator: Callable[[Callable[..., Awaitable[None]]], Any] = bp.timer_trigger(
        arg_name="timer", schedule=schedule, run_on_startup=False, use_monitor=True)
    return decorator


def _client() -> Callable[[Any], Any]:
    decorator: Callable[[Any], Any] = bp.durable_client_input(client_name="client")
    return decorator


def _route(route: str, method: str) -> Callable[[HttpHandler], Any]:
    decorator: Callable[[HttpHandler], Any] = bp.route(route=route, methods=[method],
                                                       auth_level=func.AuthLevel.FUNCTION)
    return decorator


def _function_name(name: str) -> Callable[[Any], Any]:
    decorator: Callable[[Any], Any] = bp.function_name(name)
    return decorator


@_function_name("scheduled_sync")
@_timer("%SYNC_SCHEDULE%")
@_client()
async def scheduled_sync(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """One run per configured tenant on SYNC_SCHEDULE; a tenant whose last run is still going is skipped."""
    if timer.past_due:
        log.warning("sync timer is past due; starting the runs now")
    settings = _settings()
    for tenant_id in settings.tenant_ids:
        instance_id = await start_run(client, tenant_id, "timer", {}, rerun_limits(settings))
        if instance_id is None:
            log.info("sync for tenant %s skipped: run %s is still running", tenant_id,
                     names.run_instance_id(tenant_id))
        else:
            log.info("sync for tenant %s started: %s", tenant_id, instance_id)


@_function_name("start_sync")
@_route("syncs", "POST")
@_client()
async def start_sync(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start an on-demand run; the optional JSON body overrides streams, date window, user scope, full resync."""
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        return _json(413, {"error": "request body too large", "limit_bytes": MAX_BODY_BYTES})
    try:
        settings = _settings()
    except ConfigError as exc:
        return _json(500, {"error": "the app settings are invalid", "problems": exc.problems})
    request = parse_sync_request(body, list(CATALOG), settings.tenant_ids)
    if not request.problems:
        try:
            with_overrides(settings, request.overrides)
        except ConfigError as exc:
            request.problems.extend(exc.problems)
    if request.problems or request.tenant_id is None:
        return _json(400, {"error": "invalid sync request", "problems": request.problems})
    instance_id = await start_run(client, request.tenant_id, "http", request.overrides, rerun_limits(settings))
    if instance_id is None:
        running_id = names.run_instance_id(request.tenant_id)
        return _json(409, {"error": f"a sync for tenant {request.tenant_id} is already running", "id": running_id,
                           "statusUri": _status_uri(req, running_id)})
    log.info("sync for tenant %s started on request: %s", request.tenant_id, instance_id)
    accepted = client.create_check_status_response(req, instance_id)
    payload = json.loads(accepted.get_body())
    payload["statusUri"] = _status_uri(req, instance_id)
    return _json(202, payload, headers={"Location": payload["statusQueryGetUri"], "Retry-After": "10"})


@_function_name("get_sync")
@_route("syncs/{id}", "GET")
@_client()
async def get_sync(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Status and live per-stream progress of one run."""
    instance_id = req.route_params.get("id", "")
    if not INSTANCE_ID.fullmatch(instance_id):
        return _json(400, {"error": "invalid sync id", "problems": [
            "id: must be 1-200 letters, digits, '-', '_' or ':'; use the id POST /api/syncs returned"]})
    status = await client.get_status(instance_id)
    if not status:
        return _json(404, {"error": f"no sync with id {instance_id!r}; POST /api/syncs returns the id"})
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    groups: list[Any] = []
    chunks: list[Any] = []
    if status.runtime_status in BUSY_STATES:
        for group_id in (custom.get("groups") or {}).values():
            group = await _custom_status(client, group_id)
            groups.append(group)
            for chunk_id in (group or {}).get("chunks", []):
                chunk = await _custom_status(client, chunk_id)
                chunks.append(chunk)  # a chunk counts its finished lanes; its running lanes count themselves
                for lane_id in (chunk or {}).get("lanes", []):
                    chunks.append(await _custom_status(client, lane_id))
    streams = pg.live_streams(custom, groups, chunks)
    body: dict[str, Any] = {
        "id": instance_id,
        "runtimeStatus": status.runtime_status.value if status.runtime_status else None,
        "createdTime": status.created_time.isoformat() if status.created_time else None,
        "lastUpdatedTime": status.last_updated_time.isoformat() if status.last_updated_time else None,
        "run_id": custom.get("run_id"),
        "phase": custom.get("phase"),
        "totals": pg.totals(streams),
        "streams": streams,
    }
    if status.runtime_status == df.OrchestrationRuntimeStatus.Completed:
        body["summary"] = status.output
    elif status.runtime_status == df.OrchestrationRuntimeStatus.Failed:
        body["error"] = status.output
    return _json(200, body)


@_function_name("list_streams")
@_route("streams", "GET")
async def list_streams(req: func.HttpRequest) -> func.HttpResponse:
    """The catalog with the Graph application permissions each stream needs (any one of them suffices)."""
    try:
        enabled: set[str] | None = set(_settings().streams)
    except ConfigError:
        enabled = None
    streams = [
        {
            "name": spec.name,
            "parent": spec.parent,
            "partitioned_by": spec.partition_parent,
            "permissions": list(spec.permissions),
            "workload": spec.workload,
            "dated": spec.date_column is not None,
            "incremental": spec.delta_path is not None,
            "enabled": None if enabled is None else spec.name in enabled,
        }
        for spec in CATALOG.values()
    ]
    return _json(200, {"streams": streams})


async def _custom_status(client: df.DurableOrchestrationClient, instance_id: str) -> dict[str, Any] | None:
    status = await client.get_status(instance_id)
    return status.custom_status if status and isinstance(status.custom_status, dict) else None


def _status_uri(req: func.HttpRequest, instance_id: str) -> str:
    base = req.url.split("/api/", 1)[0]
    return f"{base}/api/syncs/{instance_id}"
