"""HTTP face of the Key Vault emulator: the secrets REST API as azure-keyvault-secrets calls it.

The SDK's first request carries no token and expects the 401 bearer challenge naming the authority and tenant;
it then retries with a token for `https://vault.azure.net`. Authorization is RBAC on the token's `oid`.
`/_admin` (no auth) flips faults and grants roles.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devstack.keyvault import store as st
from devstack.outage import outage_patch
from devstack.tokens import VAULT_RESOURCE, InvalidToken, TokenVerifier

API_VERSIONS = frozenset(
    {"2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"}
)
LATEST_API_VERSION = "2026-04-01"
MAX_RESULTS = 25
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
SECRET_NOT_FOUND_HELP = (
    "If you recently deleted this secret you may be able to recover it using the correct recovery command. "
    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)


@dataclass(slots=True)
class VaultSettings:
    """Mutable on purpose: `/_admin/faults` changes a running vault."""

    tenant_id: str
    authority_url: str
    vault_name: str = "devstack"
    unavailable: bool = False
    unavailable_status: int = 503
    retry_after_seconds: int | None = None


STATE_KEY = web.AppKey("state", st.VaultState)
SETTINGS_KEY = web.AppKey("settings", VaultSettings)
VERIFIER_KEY = web.AppKey("verifier", TokenVerifier)
COUNTS_KEY: web.AppKey[Counter[str]] = web.AppKey("counts")
RESOLVER_KEY: web.AppKey[Callable[[str], str | None]] = web.AppKey("resolver")
CLAIMS = "kv_claims"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_keyvault_app(
    state: st.VaultState,
    settings: VaultSettings,
    verifier: TokenVerifier,
    resolve_principal: Callable[[str], str | None] = lambda _cid: None,
) -> web.Application:
    """`resolve_principal` maps a client id to its service principal's object id (admin grants by client id)."""
    app = web.Application(middlewares=[_pipeline])
    app[STATE_KEY] = state
    app[SETTINGS_KEY] = settings
    app[VERIFIER_KEY] = verifier
    app[COUNTS_KEY] = Counter()
    app[RESOLVER_KEY] = resolve_principal
    r = app.router
    r.add_get("/secrets", list_secrets)
    r.add_get("/secrets/{name}/versions", list_versions)
    r.add_put("/secrets/{name}", set_secret)
    r.add_delete("/secrets/{name}", delete_secret)
    r.add_get("/secrets/{name}", get_secret)
    r.add_get("/secrets/{name}/", get_secret)
    r.add_get("/secrets/{name}/{version}", get_secret)
    r.add_patch("/secrets/{name}/{version}", update_secret)
    r.add_patch("/secrets/{name}/", update_secret)
    r.add_get("/deletedsecrets/{name}", get_deleted)
    r.add_delete("/deletedsecrets/{name}", purge_deleted)
    r.add_post("/deletedsecrets/{name}/recover", recover_deleted)
    r.add_put("/_admin/faults", admin_faults)
    r.add_get("/_admin/faults", admin_faults)
    r.add_post("/_admin/roles", admin_assign)
    r.add_delete("/_admin/roles", admin_unassign)
    r.add_get("/_admin/roles", admin_roles)
    r.add_get("/_admin/stats", admin_stats)
    return app


# ---- error bodies -----------------------------------------------------------------------------------------------


def kv_error(status: int, code: str, message: str, inner: str | None = None, **headers: str) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return web.json_response({"error": error}, status=status, headers=headers or None)


def secret_not_found(name: str) -> web.Response:
    return kv_error(404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault. "
                    + SECRET_NOT_FOUND_HELP)


def _challenge(request: web.Request, message: str) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    authority = f"{settings.authority_url.rstrip('/')}/{settings.tenant_id}"
    header = f'Bearer authorization="{authority}", resource="{VAULT_RESOURCE}"'
    return kv_error(401, "Unauthorized", message, **{"WWW-Authenticate": header})


_TOKEN_MESSAGES = {
    InvalidToken.EXPIRED: "Token is expired.",
    InvalidToken.NOT_YET_VALID: "Token is not yet valid.",
    InvalidToken.BAD_SIGNATURE: "Token signature validation failed.",
    InvalidToken.MALFORMED: "Token is malformed.",
}


def _token_error(request: web.Request, reason: str, claims_hint: dict[str, Any]) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    if reason == InvalidToken.WRONG_AUDIENCE:
        message = f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {claims_hint.get('aud')}."
    elif reason == InvalidToken.WRONG_ISSUER:
        message = (f"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{settings.tenant_id}/, "
                   f"found {claims_hint.get('iss')}.")
    else:
        message = _TOKEN_MESSAGES.get(reason, "Token validation failed.")
    return _challenge(request, message)


def _unverified_claims(token: str) -> dict[str, Any]:
    """Only to quote `aud`/`iss` back in error messages, as Key Vault does; never trusted."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return data if isinstance(data, dict) else {}


@web.middleware
async def _pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Faults, then authentication, then api-version, in the order a client observes them from the service."""
    app = request.app
    if request.path.startswith("/_admin"):
        return await handler(request)
    resource = request.match_info.route.resource
    app[COUNTS_KEY][f"{request.method} {resource.canonical if resource else request.path}"] += 1
    response = await _guarded(request, handler)
    response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
    response.headers.setdefault("x-ms-keyvault-service-version", "1.9.2589.1")
    response.headers.setdefault("x-ms-keyvault-region", "eastus")
    if "x-ms-client-request-id" in request.headers:
        response.headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
    return response


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS_KEY]
    if settings.unavailable:
        extra = {"Retry-After": str(settings.retry_after_seconds)} if settings.retry_after_seconds is not None else {}
        return kv_error(settings.unavailable_status, "ServiceUnavailable",
                        "The service is temporarily unavailable. Please retry later.", **extra)
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        return _challenge(request, "AKV10000: Request is missing a Bearer or PoP token.")
    token = auth[7:].strip()
    try:
        claims = request.app[VERIFIER_KEY].verify(token, VAULT_RESOURCE)
    except InvalidToken as exc:
        return _token_error(request, exc.reason, _unverified_claims(token))
    version = request.query.get("api-version")
    if version not in API_VERSIONS:
        return kv_error(400, "BadParameter", f"The specified version ({version or ''}) is not recognized. "
                        f"Consider using the latest supported version ({LATEST_API_VERSION}).")
    request[CLAIMS] = claims
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404 and request.match_info.route.resource is None:
            return kv_error(404, "NotFound", f"The requested path {request.path} was not found.")
        raise


def _forbidden(request: web.Request, action: str, secret: str | None) -> web.Response:
    claims = request[CLAIMS]
    settings = request.app[SETTINGS_KEY]
    vault_id = (f"/subscriptions/{SUBSCRIPTION}/resourcegroups/devstack/providers/microsoft.keyvault/vaults/"
                f"{settings.vault_name}")
    resource = f"{vault_id}/secrets/{secret}" if secret else vault_id
    message = (
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments, deny assignments or role definitions were changed recently, please observe "
        "propagation time.\r\n"
        f"Caller: appid={claims.get('appid')};oid={claims.get('oid')};iss={claims.get('iss')}\r\n"
        f"Action: 'Microsoft.KeyVault/vaults/secrets/{action}'\r\n"
        f"Resource: '{resource.lower()}'\r\n"
        "Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\n"
        f"Vault: {settings.vault_name};location=eastus\r\n"
    )
    return kv_error(403, "Forbidden", message, inner="ForbiddenByRbac")


def _authorize(request: web.Request, action: str, secret: str | None = None) -> web.Response | None:
    oid = str(request[CLAIMS].get("oid", ""))
    if request.app[STATE_KEY].allowed(oid, action):
        return None
    return _forbidden(request, action, secret)


def _bad_name(name: str) -> web.Response | None:
    if st.NAME_PATTERN.match(name):
        return None
    return kv_error(400, "BadParameter", f"The request URI contains an invalid name: {name}")


# ---- bundles ----------------------------------------------------------------------------------------------------


def _origin(request: web.Request) -> str:
    return f"https://{request.host}"


def _attributes(v: st.SecretVersion) -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": v.enabled}
    if v.not_before is not None:
        attrs["nbf"] = v.not_before
    if v.expires is not None:
        attrs["exp"] = v.expires
    attrs.update(created=v.created, updated=v.updated, recoveryLevel="Recoverable+Purgeable",
                 recoverableDays=st.RECOVERABLE_DAYS)
    return attrs


def _item(origin: str, secret: st.Secret, v: st.SecretVersion, *, with_version: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"id": f"{origin}/secrets/{secret.name}" + (f"/{v.version}" if with_version else "")}
    if v.content_type is not None:
        item["contentType"] = v.content_type
    item["attributes"] = _attributes(v)
    if v.tags is not None:
        item["tags"] = v.tags
    return item


def _bundle(origin: str, secret: st.Secret, v: st.SecretVersion) -> dict[str, Any]:
    bundle: dict[str, Any] = {"value": v.value}
    bundle.update(_item(origin, secret, v, with_version=True))
    return bundle


def _deleted_bundle(origin: str, secret: st.Secret) -> dict[str, Any]:
    latest = secret.latest()
    assert latest is not None  # a stored secret always has a version
    bundle = _item(origin, secret, latest, with_version=True)
    deleted = secret.deleted_date or 0
    bundle.update(recoveryId=f"{origin}/deletedsecrets/{secret.name}", deletedDate=deleted,
                  scheduledPurgeDate=deleted + st.RECOVERABLE_DAYS * 86400)
    return bundle


def _page(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    """Key Vault pages with `maxresults` (1-25) and an absolute nextLink carrying an opaque `$skiptoken`."""
    raw_max = request.query.get("maxresults")
    try:
        size = MAX_RESULTS if raw_max is None else int(raw_max)
    except ValueError:
        size = -1
    if not 1 <= size <= MAX_RESULTS:
        return kv_error(400, "BadParameter", f"invalid maxresults '{raw_max}': it must be between 1 and {MAX_RESULTS}")
    skip = 0
    token = request.query.get("$skiptoken")
    if token:
        try:
            skip = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return kv_error(400, "BadParameter", "The $skiptoken is invalid; restart listing without it.")
    chunk = items[skip : skip + size]
    next_link = None
    if skip + size < len(items):
        next_token = base64.urlsafe_b64encode(json.dumps({"offset": skip + size}).encode()).decode()
        query = {"api-version": request.query["api-version"], "$skiptoken": next_token, "maxresults": str(size)}
        next_link = str(request.url.with_query(query).with_scheme("https"))
    return web.json_response({"value": chunk, "nextLink": next_link})


# ---- handlers ---------------------------------------------------------------------------------------------------


async def get_secret(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    version_id = request.match_info.get("version", "")
    if (bad := _bad_name(name)) or (bad := _authorize(request, st.GET_SECRET, name)):
        return bad
    secret = request.app[STATE_KEY].get(name)
    if secret is None:
        return secret_not_found(name)
    version = secret.version(version_id) if version_id else secret.latest()
    if version is None:
        return secret_not_found(f"{name}/{version_id}")
    if not version.enabled:
        return kv_error(403, "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled")
    return web.json_response(_bundle(_origin(request), secret, version))


async def set_secret(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if (bad := _bad_name(name)) or (bad := _authorize(request, st.SET_SECRET, name)):
        return bad
    state = request.app[STATE_KEY]
    if name.lower() in state.deleted:
        return kv_error(409, "Conflict", f"Secret {name} is currently in a deleted but recoverable state, and its name "
                        "cannot be reused; in this state, the secret can only be recovered or purged.",
                        inner="ObjectIsDeletedButRecoverable")
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("value"), str):
        return kv_error(400, "BadParameter", "The request body must be a JSON object with a string 'value'.")
    attrs = body.get("attributes") or {}
    version = state.set(
        name,
        body["value"],
        content_type=body.get("contentType"),
        tags=body.get("tags"),
        enabled=bool(attrs.get("enabled", True)),
        not_before=attrs.get("nbf"),
        expires=attrs.get("exp"),
    )
    secret = state.get(name)
    assert secret is not None
    return web.json_response(_bundle(_origin(request), secret, version))


async def update_secret(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    version_id = request.match_info.get("version", "")
    if (bad := _bad_name(name)) or (bad := _authorize(request, st.WRITE_METADATA, name)):
        return bad
    state = request.app[STATE_KEY]
    secret = state.get(name)
    version = None if secret is None else (secret.version(version_id) if version_id else secret.latest())
    if secret is None or version is None:
        return secret_not_found(name)
    body = await request.json()
    attrs = body.get("attributes") or {}
    changes: dict[str, Any] = {}
    if "contentType" in body:
        changes["content_type"] = body["contentType"]
    if "tags" in body:
        changes["tags"] = body["tags"]
    for wire, key in (("enabled", "enabled"), ("nbf", "not_before"), ("exp", "expires")):
        if wire in attrs:
            changes[key] = attrs[wire]
    state.update(version, changes)
    return web.json_response(_item(_origin(request), secret, version, with_version=True))


async def list_secrets(request: web.Request) -> web.Response:
    if bad := _authorize(request, st.READ_METADATA):
        return bad
    origin = _origin(request)
    items = []
    for secret in request.app[STATE_KEY].live_names():
        latest = secret.latest()
        if latest is not None:
            items.append(_item(origin, secret, latest, with_version=False))
    return _page(request, items)


async def list_versions(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if (bad := _bad_name(name)) or (bad := _authorize(request, st.READ_METADATA, name)):
        return bad
    secret = request.app[STATE_KEY].get(name)
    if secret is None:
        return _page(request, [])
    origin = _origin(request)
    return _page(request, [_item(origin, secret, v, with_version=True) for v in secret.versions])


async def delete_secret(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if (bad := _bad_name(name)) or (bad := _authorize(request, st.DELETE, name)):
        return bad
    secret = request.app[STATE_KEY].delete(name)
    if secret is None:
        return secret_not_found(name)
    return web.json_response(_deleted_bundle(_origin(request), secret))


async def get_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if (bad := _bad_name(name)) or (bad := _authorize(request, st.READ_DELETED, name)):
        return bad
    secret = request.app[STATE_KEY].deleted.get(name.lower())
    if secret is None:
        return secret_not_found(name)
    return web.json_response(_deleted_bundle(_origin(request), secret))


async def purge_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if (bad := _bad_name(name)) or (bad := _authorize(request, st.PURGE, name)):
        return bad
    if not request.app[STATE_KEY].purge(name):
        return secret_not_found(name)
    return web.Response(status=204)


async def recover_deleted(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if (bad := _bad_name(name)) or (bad := _authorize(request, st.RECOVER, name)):
        return bad
    secret = request.app[STATE_KEY].recover(name)
    latest = secret.latest() if secret else None
    if secret is None or latest is None:
        return secret_not_found(name)
    return web.json_response(_bundle(_origin(request), secret, latest))


# ---- admin ------------------------------------------------------------------------------------------------------


async def _admin_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="body: not valid JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body: expected a JSON object")
    return data


def _admin_error(message: str) -> web.Response:
    return web.json_response({"error": {"code": "BadRequest", "message": message}}, status=400)


async def admin_faults(request: web.Request) -> web.Response:
    """Body: `unavailable` (bool), `status` (5xx answered while unavailable), `retry_after_seconds` (int|null)."""
    settings = request.app[SETTINGS_KEY]
    if request.method == "PUT":
        try:
            patch = outage_patch(await _admin_json(request))
        except ValueError as exc:
            return _admin_error(str(exc))
        settings.unavailable = patch.get("unavailable", settings.unavailable)
        settings.unavailable_status = patch.get("status", settings.unavailable_status)
        settings.retry_after_seconds = patch.get("retry_after_seconds", settings.retry_after_seconds)
    return web.json_response({"unavailable": settings.unavailable, "status": settings.unavailable_status,
                              "retry_after_seconds": settings.retry_after_seconds})


async def _principal_and_role(request: web.Request) -> tuple[str, str] | web.Response:
    data = await _admin_json(request)
    role = data.get("role")
    if not isinstance(role, str):
        return _admin_error(f"role: required, one of {sorted(st.ROLES)}")
    principal = data.get("principal_id")
    if not principal and isinstance(data.get("client_id"), str):
        principal = request.app[RESOLVER_KEY](data["client_id"])
        if principal is None:
            return _admin_error(f"client_id: {data['client_id']} has no service principal in the vault's tenant")
    if not isinstance(principal, str) or not principal:
        return _admin_error("principal_id or client_id: required (the identity receiving the role)")
    return principal, role


async def admin_assign(request: web.Request) -> web.Response:
    parsed = await _principal_and_role(request)
    if isinstance(parsed, web.Response):
        return parsed
    try:
        request.app[STATE_KEY].assign(*parsed)
    except st.VaultError as exc:
        return _admin_error(str(exc))
    return web.json_response({"principal_id": parsed[0], "role": parsed[1]}, status=201)


async def admin_unassign(request: web.Request) -> web.Response:
    parsed = await _principal_and_role(request)
    if isinstance(parsed, web.Response):
        return parsed
    try:
        request.app[STATE_KEY].unassign(*parsed)
    except st.VaultError as exc:
        return _admin_error(str(exc))
    return web.Response(status=204)


async def admin_roles(request: web.Request) -> web.Response:
    assignments = request.app[STATE_KEY].assignments
    return web.json_response({k: sorted(v) for k, v in assignments.items()})


async def admin_stats(request: web.Request) -> web.Response:
    return web.json_response({"requests": dict(request.app[COUNTS_KEY].items())})
