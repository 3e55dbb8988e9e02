"""HTTP face of the Entra emulator: OIDC discovery, jwks, the v2 (and v1) token endpoint, and `/_admin`.

Paths are the ones MSAL and azure-identity request against `https://login.microsoftonline.com`; only the origin
differs locally. Request counts per route are kept so tests can prove which calls a client really made.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from devstack.entra import errors
from devstack.entra.grant import TokenRequest, assertion_audiences, issue_token
from devstack.outage import outage_patch
from devstack.registry import AppRegistration, Registry, RegistryError, new_guid
from devstack.tokens import KeySet


@dataclass(slots=True)
class EntraFaults:
    """An identity-provider outage for resilience tests: every non-admin request answers `status`."""

    unavailable: bool = False
    status: int = 503
    retry_after_seconds: int | None = None


REGISTRY_KEY = web.AppKey("registry", Registry)
FAULTS_KEY = web.AppKey("faults", EntraFaults)
KEYS_KEY = web.AppKey("keys", KeySet)
COUNTS_KEY: web.AppKey[Counter[str]] = web.AppKey("counts")
# Every access token value issued (bounded), so leak scanners can look for the ACTUAL values in logs and blobs.
ISSUED_KEY: web.AppKey[deque[str]] = web.AppKey("issued")
ISSUED_TOKENS_KEPT = 50_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_entra_app(registry: Registry, keys: KeySet) -> web.Application:
    app = web.Application(middlewares=[_count_requests])
    app[FAULTS_KEY] = EntraFaults()
    app[REGISTRY_KEY] = registry
    app[KEYS_KEY] = keys
    app[COUNTS_KEY] = Counter()
    app[ISSUED_KEY] = deque(maxlen=ISSUED_TOKENS_KEPT)
    app.router.add_get("/common/discovery/instance", instance_discovery)
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration_v2)
    app.router.add_get("/{tenant}/.well-known/openid-configuration", openid_configuration_v1)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", jwks)
    app.router.add_get("/{tenant}/discovery/keys", jwks)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token_v2)
    app.router.add_post("/{tenant}/oauth2/token", token_v1)
    _add_admin_routes(app)
    return app


@web.middleware
async def _count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.resource
    name = route.canonical if route is not None else request.path
    request.app[COUNTS_KEY][f"{request.method} {name}"] += 1
    faults = request.app[FAULTS_KEY]
    if faults.unavailable and not request.path.startswith("/_admin"):
        err = errors.transient()
        headers = {"Retry-After": str(faults.retry_after_seconds)} if faults.retry_after_seconds is not None else None
        return web.json_response(err.body(), status=faults.status, headers=headers)
    return await handler(request)


def _origin(request: web.Request) -> str:
    return f"https://{request.host}"


def _tenant_or_error(request: web.Request) -> tuple[str, str] | web.Response:
    """(tenant id, name as requested); `common`/`organizations` resolve to placeholders like Entra's metadata."""
    name = request.match_info["tenant"]
    if name.lower() in {"common", "organizations", "consumers"}:
        return "{tenantid}", name
    tenant = request.app[REGISTRY_KEY].resolve_tenant(name)
    if tenant is None:
        err = errors.tenant_not_found(name)
        body = err.body()
        body["error"] = "invalid_tenant"  # discovery names the error this way; the token endpoint says invalid_request
        return web.json_response(body, status=err.status)
    return tenant.tenant_id, name


async def instance_discovery(request: web.Request) -> web.Response:
    origin = _origin(request)
    host = request.host
    return web.json_response(
        {
            "tenant_discovery_endpoint": f"{origin}/common/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
    )


async def openid_configuration_v2(request: web.Request) -> web.Response:
    resolved = _tenant_or_error(request)
    if isinstance(resolved, web.Response):
        return resolved
    tenant_id, name = resolved
    origin = _origin(request)
    return web.json_response(
        {
            "token_endpoint": f"{origin}/{name}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{origin}/{name}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{origin}/{tenant_id}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{origin}/{name}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{origin}/{name}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{origin}/{name}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
                "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name",
                "tid", "ver", "at_hash", "c_hash", "email",
            ],
            "kerberos_endpoint": f"{origin}/{name}/kerberos",
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
    )


async def openid_configuration_v1(request: web.Request) -> web.Response:
    resolved = _tenant_or_error(request)
    if isinstance(resolved, web.Response):
        return resolved
    tenant_id, name = resolved
    origin = _origin(request)
    return web.json_response(
        {
            "token_endpoint": f"{origin}/{name}/oauth2/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{origin}/{name}/discovery/keys",
            "issuer": f"https://sts.windows.net/{tenant_id}/",
            "authorization_endpoint": f"{origin}/{name}/oauth2/authorize",
            "id_token_signing_alg_values_supported": ["RS256"],
            "cloud_instance_name": "microsoftonline.com",
            "msgraph_host": "graph.microsoft.com",
        }
    )


async def jwks(request: web.Request) -> web.Response:
    resolved = _tenant_or_error(request)
    if isinstance(resolved, web.Response):
        return resolved
    tenant_id, _ = resolved
    issuer = None if tenant_id == "{tenantid}" else f"{_origin(request)}/{tenant_id}/v2.0"
    return web.json_response(request.app[KEYS_KEY].jwks(issuer))


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(user), unquote(password)


async def _token(request: web.Request, form: dict[str, str]) -> web.Response:
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    headers = {
        "Cache-Control": "no-store, no-cache",
        "Pragma": "no-cache",
        "x-ms-request-id": trace_id,
        "client-request-id": correlation_id,
    }
    name = request.match_info["tenant"]
    registry = request.app[REGISTRY_KEY]
    tenant = registry.resolve_tenant(name)
    audiences = assertion_audiences(_origin(request), tenant, name) if tenant else frozenset()
    token_request = TokenRequest(name, form, audiences, _basic_auth(request))
    try:
        body = issue_token(token_request, registry, request.app[KEYS_KEY])
    except errors.AadError as err:
        return web.json_response(
            err.body(trace_id=trace_id, correlation_id=correlation_id), status=err.status, headers=headers
        )
    request.app[ISSUED_KEY].append(str(body["access_token"]))
    return web.json_response(body, headers=headers)


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_type != "application/x-www-form-urlencoded":
        return {}
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


async def token_v2(request: web.Request) -> web.Response:
    return await _token(request, await _form(request))


async def token_v1(request: web.Request) -> web.Response:
    """v1 endpoint: `resource=` instead of `scope=`; translated so the same rules apply."""
    form = await _form(request)
    if "resource" in form and "scope" not in form:
        form["scope"] = form.pop("resource").rstrip("/") + "/.default"
    return await _token(request, form)


# ---- admin API --------------------------------------------------------------------------------------------------


def _add_admin_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_admin/tenants", admin_list_tenants)
    r.add_post("/_admin/tenants", admin_create_tenant)
    r.add_post("/_admin/apps", admin_register_app)
    r.add_get("/_admin/apps/{client_id}", admin_get_app)
    r.add_patch("/_admin/apps/{client_id}", admin_patch_app)
    r.add_post("/_admin/apps/{client_id}/secrets", admin_add_secret)
    r.add_delete("/_admin/apps/{client_id}/secrets/{key_id}", admin_remove_secret)
    r.add_post("/_admin/apps/{client_id}/certificates", admin_add_certificate)
    r.add_delete("/_admin/apps/{client_id}/certificates/{thumbprint}", admin_remove_certificate)
    r.add_put("/_admin/apps/{client_id}/grants/{tenant_id}", admin_grant)
    r.add_delete("/_admin/apps/{client_id}/grants/{tenant_id}", admin_revoke)
    r.add_get("/_admin/settings", admin_get_settings)
    r.add_put("/_admin/settings", admin_put_settings)
    r.add_get("/_admin/stats", admin_stats)
    r.add_get("/_admin/tokens", admin_tokens)
    r.add_get("/_admin/faults", admin_faults)
    r.add_put("/_admin/faults", admin_faults)


def _bad_request(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": {"code": "BadRequest", "message": message}}, status=status)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="body: not valid JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body: expected a JSON object")
    return data


def _admin(handler: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    """Turns registry validation errors into a 400/404 that names the field, so admin mistakes are obvious."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            result = await handler(request)
        except RegistryError as exc:
            status = 404 if "no app registration" in str(exc) else 400
            return _bad_request(str(exc), status)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result)

    return wrapped


def app_summary(app: AppRegistration) -> dict[str, Any]:
    """Never includes secret values, only their hints and ids."""
    return {
        "client_id": app.client_id,
        "display_name": app.display_name,
        "home_tenant": app.home_tenant,
        "disabled": app.disabled,
        "secrets": [{"key_id": s.key_id, "hint": s.hint, "expires_at": s.expires_at} for s in app.secrets],
        "certificates": [{"key_id": c.key_id, "thumbprint": c.thumbprint} for c in app.certificates],
        "principals": {tid: {"object_id": sp.object_id, "roles": sp.roles} for tid, sp in app.principals.items()},
        "tokens_issued": app.tokens_issued,
        "token_lifetime_seconds": app.token_lifetime_seconds,
    }


def _str_list(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"{name}: expected a list of strings, e.g. [\"User.Read.All\"]")
    return value


@_admin
async def admin_list_tenants(request: web.Request) -> Any:
    tenants = request.app[REGISTRY_KEY].tenants.values()
    return {"value": [{"tenant_id": t.tenant_id, "domains": t.domains} for t in tenants]}


@_admin
async def admin_create_tenant(request: web.Request) -> Any:
    data = await _json_body(request)
    tenant_id = str(data.get("tenant_id") or new_guid())
    domains = _str_list(data, "domains")
    info = request.app[REGISTRY_KEY].add_tenant(tenant_id, domains)
    return web.json_response({"tenant_id": info.tenant_id, "domains": info.domains}, status=201)


@_admin
async def admin_register_app(request: web.Request) -> Any:
    """Body: display_name, home_tenant, optional client_id, roles, secret (true or a value), certificate_pem."""
    registry = request.app[REGISTRY_KEY]
    data = await _json_body(request)
    home = data.get("home_tenant") or (next(iter(registry.tenants)) if len(registry.tenants) == 1 else None)
    if not isinstance(home, str):
        raise RegistryError("home_tenant: required when the emulator knows several tenants")
    app = registry.register_app(
        display_name=str(data.get("display_name") or "app"),
        home_tenant=home,
        client_id=data.get("client_id"),
        roles=_str_list(data, "roles"),
    )
    result = app_summary(app)
    secret_opt = data.get("secret")
    if secret_opt:
        secret = registry.add_secret(app.client_id, secret_opt if isinstance(secret_opt, str) else None)
        result["secret"] = {"key_id": secret.key_id, "value": secret.value}
    if data.get("certificate_pem"):
        cert = registry.add_certificate(app.client_id, str(data["certificate_pem"]))
        result["certificate"] = {"key_id": cert.key_id, "thumbprint": cert.thumbprint}
    return web.json_response(result, status=201)


@_admin
async def admin_get_app(request: web.Request) -> Any:
    return app_summary(request.app[REGISTRY_KEY].app(request.match_info["client_id"]))


@_admin
async def admin_patch_app(request: web.Request) -> Any:
    data = await _json_body(request)
    registry = request.app[REGISTRY_KEY]
    client_id = request.match_info["client_id"]
    if "disabled" in data:
        registry.set_disabled(client_id, bool(data["disabled"]))
    if "token_lifetime_seconds" in data:
        registry.set_token_lifetime(client_id, data["token_lifetime_seconds"])
    return app_summary(registry.app(client_id))


@_admin
async def admin_add_secret(request: web.Request) -> Any:
    data = await _json_body(request)
    lifetime = data.get("lifetime_seconds")
    if lifetime is not None and not isinstance(lifetime, int | float):
        raise RegistryError("lifetime_seconds: expected a number of seconds")
    value = data.get("value")
    secret = request.app[REGISTRY_KEY].add_secret(
        request.match_info["client_id"], value if isinstance(value, str) else None, lifetime
    )
    return web.json_response({"key_id": secret.key_id, "value": secret.value, "hint": secret.hint}, status=201)


@_admin
async def admin_remove_secret(request: web.Request) -> Any:
    request.app[REGISTRY_KEY].remove_secret(request.match_info["client_id"], request.match_info["key_id"])
    return web.Response(status=204)


@_admin
async def admin_add_certificate(request: web.Request) -> Any:
    data = await _json_body(request)
    pem = data.get("certificate_pem")
    if not isinstance(pem, str):
        raise RegistryError("certificate_pem: required, the PEM text of the public certificate")
    cert = request.app[REGISTRY_KEY].add_certificate(request.match_info["client_id"], pem)
    return web.json_response({"key_id": cert.key_id, "thumbprint": cert.thumbprint}, status=201)


@_admin
async def admin_remove_certificate(request: web.Request) -> Any:
    request.app[REGISTRY_KEY].remove_certificate(request.match_info["client_id"], request.match_info["thumbprint"])
    return web.Response(status=204)


@_admin
async def admin_grant(request: web.Request) -> Any:
    data = await _json_body(request)
    sp = request.app[REGISTRY_KEY].grant(
        request.match_info["client_id"], request.match_info["tenant_id"], _str_list(data, "roles")
    )
    return {"object_id": sp.object_id, "roles": sp.roles}


@_admin
async def admin_revoke(request: web.Request) -> Any:
    request.app[REGISTRY_KEY].revoke_consent(request.match_info["client_id"], request.match_info["tenant_id"])
    return web.Response(status=204)


@_admin
async def admin_get_settings(request: web.Request) -> Any:
    return {"token_lifetime_seconds": request.app[REGISTRY_KEY].token_lifetime_seconds}


@_admin
async def admin_put_settings(request: web.Request) -> Any:
    data = await _json_body(request)
    registry = request.app[REGISTRY_KEY]
    if "token_lifetime_seconds" in data:
        lifetime = data["token_lifetime_seconds"]
        if not isinstance(lifetime, int) or lifetime < 1:
            raise RegistryError("token_lifetime_seconds: expected a positive integer (3599 is Entra's default)")
        registry.token_lifetime_seconds = lifetime
        registry.save()
    return {"token_lifetime_seconds": registry.token_lifetime_seconds}


@_admin
async def admin_stats(request: web.Request) -> Any:
    registry = request.app[REGISTRY_KEY]
    per_app = {cid: app.tokens_issued for cid, app in registry.apps.items()}
    return {
        "tokens_issued": sum(per_app.values()),
        "tokens_issued_per_app": per_app,
        "requests": dict(request.app[COUNTS_KEY].items()),
    }


@_admin
async def admin_tokens(request: web.Request) -> Any:
    """The access token values issued so far (newest last, at most ISSUED_TOKENS_KEPT): leak scanners search
    logs, blobs and HTTP answers for these exact values. `?since=N` skips the first N."""
    kept: deque[str] = request.app[ISSUED_KEY]
    issued = list(kept)
    try:
        since = max(0, int(request.query.get("since", "0")))
    except ValueError:
        raise RegistryError("since: expected a non-negative integer") from None
    return {"count": len(issued), "tokens": issued[since:]}


@_admin
async def admin_faults(request: web.Request) -> Any:
    """Body: `unavailable` (bool), `status` (5xx while unavailable), `retry_after_seconds` (int or null)."""
    faults = request.app[FAULTS_KEY]
    if request.method == "PUT":
        try:
            patch = outage_patch(await _json_body(request))
        except ValueError as exc:
            raise RegistryError(str(exc)) from None
        for name, value in patch.items():
            setattr(faults, name, value)
    return asdict(faults)
