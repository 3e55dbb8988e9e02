"""Entra's directory as the emulators need it: tenants, app registrations and their service principals.

An app registration lives in one home tenant and owns credentials (several secrets so rotation can overlap,
certificates by thumbprint). A service principal is the app's instance in a tenant where it was consented,
holding that tenant's granted Graph application permissions, which become the token's `roles`. Pure data plus
JSON persistence; no HTTP here.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes


def new_guid() -> str:
    return str(uuid.uuid4())


def new_secret_value() -> str:
    """Shaped like an Entra client secret: 40 characters with a `~` at position 4 (length/format are visible)."""
    body = base64.urlsafe_b64encode(secrets.token_bytes(30)).decode("ascii").replace("-", ".")
    return body[:3] + "8Q~" + body[3:37]


def cert_thumbprint(cert_pem: str) -> str:
    """Upper-case hex SHA-1 thumbprint, as the portal shows it and MSAL expects it."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - thumbprints are SHA-1 by definition


@dataclass(slots=True)
class ClientSecret:
    key_id: str
    value: str
    hint: str
    expires_at: float | None = None

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(self.value.encode(), candidate.encode())

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(slots=True)
class Certificate:
    key_id: str
    thumbprint: str
    pem: str

    def public_key(self) -> Any:
        return x509.load_pem_x509_certificate(self.pem.encode("ascii")).public_key()


@dataclass(slots=True)
class ServicePrincipal:
    object_id: str
    roles: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AppRegistration:
    client_id: str
    display_name: str
    home_tenant: str
    secrets: list[ClientSecret] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    # tenant id -> the service principal there (absent = not consented in that tenant).
    principals: dict[str, ServicePrincipal] = field(default_factory=dict)
    disabled: bool = False
    tokens_issued: int = 0
    token_lifetime_seconds: int | None = None  # None: the directory-wide lifetime

    def certificate(self, thumbprint: str) -> Certificate | None:
        wanted = thumbprint.upper()
        return next((c for c in self.certificates if c.thumbprint == wanted), None)


@dataclass(slots=True)
class TenantInfo:
    tenant_id: str
    domains: list[str]


class RegistryError(ValueError):
    """Bad admin input; the message names the field and the fix."""


class Registry:
    """Tenants and apps, saved as JSON after each change when a path is given (survives restarts)."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self.tenants: dict[str, TenantInfo] = {}
        self.apps: dict[str, AppRegistration] = {}
        self.token_lifetime_seconds = 3599
        if path is not None and path.exists():
            self._load(json.loads(path.read_text("utf-8")))

    # ---- tenants -------------------------------------------------------------------------------------------
    def add_tenant(self, tenant_id: str, domains: list[str]) -> TenantInfo:
        try:
            uuid.UUID(tenant_id)
        except ValueError as exc:
            raise RegistryError(f"tenant_id: {tenant_id!r} is not a GUID; pass the directory id") from exc
        info = TenantInfo(tenant_id, [d.lower() for d in domains])
        self.tenants[tenant_id] = info
        self.save()
        return info

    def resolve_tenant(self, name: str) -> TenantInfo | None:
        """A tenant by id or by any of its verified domains, as the authority path allows."""
        lowered = name.lower()
        if lowered in self.tenants:
            return self.tenants[lowered]
        return next((t for t in self.tenants.values() if lowered in t.domains), None)

    # ---- apps ----------------------------------------------------------------------------------------------
    def register_app(
        self,
        *,
        display_name: str,
        home_tenant: str,
        client_id: str | None = None,
        roles: list[str] | None = None,
    ) -> AppRegistration:
        if home_tenant not in self.tenants:
            raise RegistryError(f"home_tenant: unknown tenant {home_tenant!r}; create it first")
        app_id = client_id or new_guid()
        if app_id in self.apps:
            raise RegistryError(f"client_id: {app_id} is already registered; omit it to get a new one")
        app = AppRegistration(app_id, display_name, home_tenant)
        app.principals[home_tenant] = ServicePrincipal(new_guid(), sorted(set(roles or [])))
        self.apps[app_id] = app
        self.save()
        return app

    def app(self, client_id: str) -> AppRegistration:
        found = self.apps.get(client_id)
        if found is None:
            raise RegistryError(f"client_id: no app registration {client_id!r}")
        return found

    def add_secret(
        self, client_id: str, value: str | None = None, lifetime_seconds: float | None = None
    ) -> ClientSecret:
        app = self.app(client_id)
        secret_value = value or new_secret_value()
        expires = time.time() + lifetime_seconds if lifetime_seconds is not None else None
        secret = ClientSecret(new_guid(), secret_value, secret_value[:3], expires)
        app.secrets.append(secret)
        self.save()
        return secret

    def remove_secret(self, client_id: str, key_id: str) -> None:
        app = self.app(client_id)
        before = len(app.secrets)
        app.secrets = [s for s in app.secrets if s.key_id != key_id]
        if len(app.secrets) == before:
            raise RegistryError(f"key_id: app {client_id} has no secret {key_id!r}")
        self.save()

    def add_certificate(self, client_id: str, cert_pem: str) -> Certificate:
        app = self.app(client_id)
        try:
            thumbprint = cert_thumbprint(cert_pem)
        except ValueError as exc:
            raise RegistryError("certificate: not a PEM X.509 certificate (-----BEGIN CERTIFICATE-----)") from exc
        existing = app.certificate(thumbprint)
        if existing is not None:
            return existing
        cert = Certificate(new_guid(), thumbprint, cert_pem)
        app.certificates.append(cert)
        self.save()
        return cert

    def remove_certificate(self, client_id: str, thumbprint: str) -> None:
        app = self.app(client_id)
        before = len(app.certificates)
        app.certificates = [c for c in app.certificates if c.thumbprint != thumbprint.upper()]
        if len(app.certificates) == before:
            raise RegistryError(f"thumbprint: app {client_id} has no certificate {thumbprint!r}")
        self.save()

    def grant(self, client_id: str, tenant_id: str, roles: list[str]) -> ServicePrincipal:
        """Admin consent in `tenant_id`: creates the service principal there and sets its granted roles."""
        app = self.app(client_id)
        if tenant_id not in self.tenants:
            raise RegistryError(f"tenant_id: unknown tenant {tenant_id!r}; create it first")
        sp = app.principals.get(tenant_id)
        if sp is None:
            sp = app.principals[tenant_id] = ServicePrincipal(new_guid())
        sp.roles = sorted(set(roles))
        self.save()
        return sp

    def revoke_consent(self, client_id: str, tenant_id: str) -> None:
        app = self.app(client_id)
        if app.principals.pop(tenant_id, None) is None:
            raise RegistryError(f"tenant_id: app {client_id} is not consented in {tenant_id!r}")
        self.save()

    def set_disabled(self, client_id: str, disabled: bool) -> None:
        self.app(client_id).disabled = disabled
        self.save()

    def set_token_lifetime(self, client_id: str, seconds: int | None) -> None:
        """Per-app lifetime (like a token lifetime policy on one service principal): short-lived tokens for
        one client in fault tests without touching the others sharing the stack."""
        if seconds is not None and (not isinstance(seconds, int) or seconds < 1):
            raise RegistryError("token_lifetime_seconds: expected a positive integer or null")
        self.app(client_id).token_lifetime_seconds = seconds
        self.save()

    def principal_by_object_id(self, object_id: str) -> tuple[AppRegistration, str] | None:
        for app in self.apps.values():
            for tenant_id, sp in app.principals.items():
                if sp.object_id == object_id:
                    return app, tenant_id
        return None

    # ---- persistence ---------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "token_lifetime_seconds": self.token_lifetime_seconds,
            "tenants": [asdict(t) for t in self.tenants.values()],
            "apps": [asdict(a) for a in self.apps.values()],
        }

    def save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1), "utf-8")
        tmp.chmod(0o600)
        tmp.replace(self._path)

    def _load(self, data: dict[str, Any]) -> None:
        self.token_lifetime_seconds = int(data.get("token_lifetime_seconds", 3599))
        for t in data.get("tenants", []):
            self.tenants[t["tenant_id"]] = TenantInfo(t["tenant_id"], list(t["domains"]))
        for a in data.get("apps", []):
            app = AppRegistration(
                client_id=a["client_id"],
                display_name=a["display_name"],
                home_tenant=a["home_tenant"],
                secrets=[ClientSecret(**s) for s in a["secrets"]],
                certificates=[Certificate(**c) for c in a["certificates"]],
                principals={tid: ServicePrincipal(**sp) for tid, sp in a["principals"].items()},
                disabled=bool(a.get("disabled", False)),
                token_lifetime_seconds=a.get("token_lifetime_seconds"),
                tokens_issued=int(a.get("tokens_issued", 0)),
            )
            self.apps[app.client_id] = app


