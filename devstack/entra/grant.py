"""The client-credentials grant as Entra evaluates it: pure rules over the registry, no HTTP.

Order follows Entra: request shape, tenant, app and consent, scope, then the credential (secret or signed
certificate assertion). Every failure is an `AadError` carrying the AADSTS code clients see in Azure.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from devstack.entra import errors
from devstack.registry import AppRegistration, Certificate, Registry, TenantInfo
from devstack.tokens import (
    GRAPH_RESOURCE,
    STORAGE_RESOURCE,
    VAULT_RESOURCE,
    KeySet,
    access_token_claims,
    audience_forms,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SKEW_SECONDS = 300
KNOWN_RESOURCES = (GRAPH_RESOURCE, VAULT_RESOURCE, STORAGE_RESOURCE)


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What the HTTP layer extracted: the tenant segment of the path, the form, and accepted assertion audiences."""

    tenant_name: str
    form: Mapping[str, str]
    assertion_audiences: frozenset[str]
    basic_auth: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """The requested resource: `audience` keeps the form the client asked for (URI or app id), like Entra."""

    canonical: str
    audience: str


def resolve_resource(scope: str | None) -> Resource:
    if not scope or not scope.strip():
        raise errors.missing_parameter("scope")
    scopes = scope.split()
    resources: list[Resource] = []
    for item in scopes:
        if item.lower() in {"openid", "profile", "offline_access", "email"}:
            continue
        if not item.endswith("/.default"):
            raise errors.scope_not_default(item)
        requested = item[: -len("/.default")].rstrip("/")
        canonical = next((r for r in KNOWN_RESOURCES if requested.lower() in audience_forms(r)), None)
        resources.append(Resource(canonical or requested, requested))
    if len(resources) != 1:
        raise errors.scope_invalid(scope)
    return resources[0]


def assertion_audiences(origin: str, tenant: TenantInfo, requested_name: str) -> frozenset[str]:
    """Token endpoint URLs an assertion's `aud` may name (tenant by id or any domain, v1 or v2 endpoint)."""
    names = {requested_name, tenant.tenant_id, *tenant.domains}
    paths = ("/oauth2/v2.0/token", "/oauth2/token")
    return frozenset(f"{origin}/{name}{path}".lower() for name in names for path in paths)


def issue_token(request: TokenRequest, registry: Registry, keys: KeySet, now: int | None = None) -> dict[str, Any]:
    """Returns the token response body or raises `AadError`."""
    issued_at = int(time.time()) if now is None else now
    form = request.form
    grant = form.get("grant_type")
    if not grant:
        raise errors.missing_parameter("grant_type")
    if grant != "client_credentials":
        raise errors.unsupported_grant(grant)
    tenant = registry.resolve_tenant(request.tenant_name)
    if tenant is None:
        raise errors.tenant_not_found(request.tenant_name)
    client_id = form.get("client_id") or (request.basic_auth[0] if request.basic_auth else "")
    if not client_id:
        raise errors.missing_parameter("client_id")
    app = registry.apps.get(client_id)
    principal = app.principals.get(tenant.tenant_id) if app else None
    if app is None or principal is None:
        raise errors.app_not_found(client_id, request.tenant_name)
    if app.disabled:
        raise errors.app_disabled(client_id, app.display_name)
    resource = resolve_resource(form.get("scope"))
    if resource.canonical not in KNOWN_RESOURCES:
        raise errors.resource_not_found(resource.audience, request.tenant_name)
    _authenticate(app, request, issued_at)

    lifetime = app.token_lifetime_seconds or registry.token_lifetime_seconds
    roles = principal.roles if resource.canonical == GRAPH_RESOURCE else []
    claims = access_token_claims(
        tenant_id=tenant.tenant_id,
        client_id=app.client_id,
        object_id=principal.object_id,
        audience=resource.audience,
        roles=roles,
        lifetime_seconds=lifetime,
        now=issued_at,
    )
    claims["app_displayname"] = app.display_name
    app.tokens_issued += 1
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": keys.active.sign(claims),
    }


def _authenticate(app: AppRegistration, request: TokenRequest, now: int) -> None:
    form = request.form
    secret = form.get("client_secret") or (request.basic_auth[1] if request.basic_auth else None)
    assertion = form.get("client_assertion")
    if assertion:
        assertion_type = form.get("client_assertion_type", "")
        if assertion_type != ASSERTION_TYPE:
            raise errors.bad_assertion_type(assertion_type)
        verify_assertion(app, assertion, request.assertion_audiences, now)
        return
    if not secret:
        raise errors.no_credential()
    matching = [s for s in app.secrets if s.matches(secret)]
    if not matching:
        raise errors.bad_secret(app.client_id)
    if all(s.expired(now) for s in matching):
        raise errors.expired_secret(app.client_id)


def _thumbprint_from_header(value: str) -> bytes:
    padded = value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4)
    try:
        return base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise errors.malformed_assertion() from exc


def _find_certificate(app: AppRegistration, header: Mapping[str, Any]) -> Certificate:
    if "x5t#S256" in header:
        wanted = _thumbprint_from_header(str(header["x5t#S256"]))
        for cert in app.certificates:
            parsed = x509.load_pem_x509_certificate(cert.pem.encode("ascii"))
            if parsed.fingerprint(hashes.SHA256()) == wanted:
                return cert
        raise errors.unknown_certificate(app.client_id, wanted.hex().upper())
    if "x5t" in header:
        wanted_hex = _thumbprint_from_header(str(header["x5t"])).hex().upper()
        found = app.certificate(wanted_hex)
        if found is None:
            raise errors.unknown_certificate(app.client_id, wanted_hex)
        return found
    raise errors.unknown_certificate(app.client_id, "(none: the assertion header has no x5t)")


def verify_assertion(app: AppRegistration, assertion: str, audiences: Iterable[str], now: int) -> dict[str, Any]:
    """Signature by a registered certificate, aud = this tenant's token endpoint, iss = sub = client_id, time."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise errors.malformed_assertion() from exc
    if header.get("alg") not in {"RS256", "PS256"}:
        raise errors.bad_assertion_signature()
    cert = _find_certificate(app, header)
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            cert.public_key(),
            algorithms=["RS256", "PS256"],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise errors.bad_assertion_signature() from exc
    except jwt.PyJWTError as exc:
        raise errors.malformed_assertion() from exc
    aud = claims.get("aud")
    aud_values = aud if isinstance(aud, list) else [aud]
    allowed = {a.lower() for a in audiences}
    if not any(isinstance(a, str) and a.lower() in allowed for a in aud_values):
        raise errors.assertion_audience()
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise errors.assertion_subject()
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int | float) or now > exp + ASSERTION_SKEW_SECONDS:
        raise errors.assertion_time(now, nbf, exp)
    if isinstance(nbf, int | float) and now + ASSERTION_SKEW_SECONDS < nbf:
        raise errors.assertion_time(now, nbf, exp)
    return claims
