"""Graph access tokens: MSAL client credentials (secret or certificate from Key Vault) or the managed identity.

Tokens are cached per tenant and refreshed five minutes before expiry under a per-tenant lock, so a burst of
partitions starting together causes one token request, not one each. MSAL is synchronous, so it runs in a worker
thread and never blocks the event loop the partitions share. When Entra answers `invalid_client` the secret was
rotated (or revoked): the secret is re-read from Key Vault once and the request repeated, without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msal  # type: ignore[import-untyped]
import orjson
import requests
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError

from shared.auth.certs import CertificateFormatError, parse_certificate
from shared.auth.secrets import SecretCache, SecretReadError
from shared.config import Settings

REFRESH_MARGIN_SECONDS = 300.0


class GraphAuthError(Exception):
    """No Graph token could be obtained; `code` is Entra's error (e.g. invalid_client). Never holds a secret."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str = field(repr=False)
    expires_on: float
    roles: frozenset[str] | None
    """Application permissions granted (`roles` claim), None when the token is not a readable JWT."""

    def fresh(self, now: float | None = None) -> bool:
        return self.expires_on - (now if now is not None else time.time()) > REFRESH_MARGIN_SECONDS


def token_roles(token: str) -> frozenset[str] | None:
    """The `roles` claim, read without verification: only used to explain a 403, never to grant anything."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    roles = claims.get("roles") if isinstance(claims, Mapping) else None
    return frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset()


class TokenProvider(Protocol):
    async def get(self, tenant_id: str) -> AccessToken: ...

    def invalidate(self, tenant_id: str, token: AccessToken) -> None: ...

    async def close(self) -> None: ...


class MsalTokenProvider:
    """Client credentials from Key Vault (secret or certificate) through MSAL."""

    def __init__(self, settings: Settings, secrets: SecretCache) -> None:
        assert settings.client_id is not None
        self._settings = settings
        self._secrets = secrets
        self._tokens: dict[str, AccessToken] = {}
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._http: requests.Session | None = None
        if settings.ca_bundle:
            # REQUESTS_CA_BUNDLE in the environment would override Session.verify: trust_env=False stops that.
            self._http = requests.Session()
            self._http.verify = settings.ca_bundle
            self._http.trust_env = False
        self.token_requests = 0
        self.secret_rereads = 0

    @property
    def _secret_name(self) -> str:
        s = self._settings
        return s.certificate_secret_name if s.credential_type == "certificate" else s.client_secret_name

    async def _client_credential(self, force: bool) -> str | dict[str, str]:
        secret = await self._secrets.get(self._secret_name, force=force)
        if self._settings.credential_type == "certificate":
            try:
                return parse_certificate(secret.value).msal_credential()
            except CertificateFormatError as exc:
                raise GraphAuthError("CertificateFormat", f"Key Vault secret {self._secret_name!r}: {exc}") from None
        return secret.value

    def _build_app(self, tenant_id: str, credential: str | dict[str, str]) -> msal.ConfidentialClientApplication:
        s = self._settings
        kwargs: dict[str, Any] = {"azure_region": False}
        if s.authority_host_override:
            kwargs["instance_discovery"] = False
        if self._http is not None:
            kwargs["http_client"] = self._http
        return msal.ConfidentialClientApplication(
            s.client_id, client_credential=credential, authority=f"{s.authority_host}/{tenant_id}", **kwargs
        )

    async def _acquire(self, tenant_id: str, *, force_secret: bool) -> dict[str, Any]:
        app: msal.ConfidentialClientApplication | None = self._apps.get(tenant_id)
        if app is None or force_secret:
            credential = await self._client_credential(force_secret)
            try:
                app = await asyncio.to_thread(self._build_app, tenant_id, credential)
            except (ValueError, requests.RequestException) as exc:
                raise GraphAuthError("AuthorityUnavailable",
                                     f"cannot reach the login authority {self._settings.authority_host}/{tenant_id}: "
                                     f"{type(exc).__name__}") from None
            self._apps[tenant_id] = app
        assert app is not None
        self.token_requests += 1
        try:
            result: dict[str, Any] = await asyncio.to_thread(app.acquire_token_for_client,
                                                             scopes=[self._settings.graph_scope])
        except requests.RequestException as exc:
            raise GraphAuthError("AuthorityUnavailable",
                                 f"token request to {self._settings.authority_host} failed: {type(exc).__name__}"
                                 ) from None
        return result

    async def get(self, tenant_id: str) -> AccessToken:
        cached = self._tokens.get(tenant_id)
        if cached and cached.fresh():
            return cached
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(tenant_id)
            if cached and cached.fresh():
                return cached
            result = await self._acquire(tenant_id, force_secret=False)
            if result.get("error") == "invalid_client":
                self.secret_rereads += 1
                result = await self._acquire(tenant_id, force_secret=True)
            if "access_token" not in result:
                raise GraphAuthError(str(result.get("error", "token_error")), self._describe(tenant_id, result))
            token = str(result["access_token"])
            expires_in = float(result.get("expires_in", 3599))
            fresh = AccessToken(token, time.time() + expires_in, token_roles(token))
            self._tokens[tenant_id] = fresh
            return fresh

    def _describe(self, tenant_id: str, result: Mapping[str, Any]) -> str:
        error = result.get("error", "token_error")
        codes = ",".join(f"AADSTS{c}" for c in result.get("error_codes", []) or [])
        desc = str(result.get("error_description", "")).split("\r\n")[0].split("\n")[0][:240]
        fix = (f"check the app's credential in Key Vault secret {self._secret_name!r} and that the app is consented "
               f"in tenant {tenant_id}")
        return f"Entra refused the Graph token request ({error} {codes}): {desc}; {fix}".replace("  ", " ")

    def invalidate(self, tenant_id: str, token: AccessToken) -> None:
        """Graph refused `token`: forget it and MSAL's cached copy (MSAL would hand the same token back)."""
        if self._tokens.get(tenant_id) is token:
            del self._tokens[tenant_id]
            self._apps.pop(tenant_id, None)

    async def close(self) -> None:
        if self._http is not None:
            self._http.close()


class IdentityTokenProvider:
    """`managed_identity`: the function's own identity holds the Graph application roles; no secret exists."""

    def __init__(self, settings: Settings, credential: AsyncTokenCredential) -> None:
        self._scope = settings.graph_scope
        self._credential = credential
        self._tokens: dict[str, AccessToken] = {}
        self._lock = asyncio.Lock()
        self.token_requests = 0

    async def get(self, tenant_id: str) -> AccessToken:
        cached = self._tokens.get(tenant_id)
        if cached and cached.fresh():
            return cached
        async with self._lock:
            cached = self._tokens.get(tenant_id)
            if cached and cached.fresh():
                return cached
            self.token_requests += 1
            try:
                raw = await self._credential.get_token(self._scope)
            except ClientAuthenticationError as exc:
                raise GraphAuthError("ManagedIdentityUnavailable",
                                     f"the managed identity could not get a Graph token: {type(exc).__name__}; "
                                     "check AZURE_CLIENT_ID and that the identity has Graph app roles") from None
            fresh = AccessToken(raw.token, float(raw.expires_on), token_roles(raw.token))
            self._tokens[tenant_id] = fresh
            return fresh

    def invalidate(self, tenant_id: str, token: AccessToken) -> None:
        if self._tokens.get(tenant_id) is token:
            del self._tokens[tenant_id]

    async def close(self) -> None:
        return None


__all__ = [
    "AccessToken", "GraphAuthError", "IdentityTokenProvider", "MsalTokenProvider", "SecretReadError",
    "TokenProvider", "token_roles",
]
