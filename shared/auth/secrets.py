"""Key Vault secrets with a TTL cache: one read per TTL per worker, and a forced re-read after a rotation."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets import KeyVaultSecret
from azure.keyvault.secrets.aio import SecretClient

from shared.auth.credentials import transport_kwargs
from shared.config import Settings


class SecretReadError(Exception):
    """Key Vault could not give us the secret; names the vault and secret, never a value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Secret:
    value: str = field(repr=False)
    content_type: str | None
    version: str | None


class SecretCache:
    def __init__(self, settings: Settings, credential: AsyncTokenCredential, ttl_seconds: float = 900.0) -> None:
        assert settings.key_vault_url is not None
        self._vault = settings.key_vault_url
        kwargs: dict[str, Any] = {**transport_kwargs(settings), "retry_backoff_factor": settings.key_vault_backoff}
        if settings.key_vault_override:
            kwargs["verify_challenge_resource"] = False
        self._client = SecretClient(settings.key_vault_url, credential, **kwargs)
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Secret]] = {}
        self._lock = asyncio.Lock()
        self._failed: dict[str, tuple[float, SecretReadError]] = {}
        self.reads = 0

    async def get(self, name: str, *, force: bool = False) -> Secret:
        arrived = time.monotonic()
        async with self._lock:
            cached = self._cache.get(name)
            if cached and not force and time.monotonic() - cached[0] < self._ttl:
                return cached[1]
            failed = self._failed.get(name)
            if failed is not None and failed[0] >= arrived:
                # A read that ended while this caller queued already failed (the SDK retried it with backoff):
                # share that answer instead of making every queued partition sit through its own retries.
                raise SecretReadError(failed[1].code, str(failed[1]))
            try:
                found = await self._read(name)
            except SecretReadError as exc:
                self._failed[name] = (time.monotonic(), exc)
                raise
            self._failed.pop(name, None)
            self.reads += 1
            secret = Secret(found.value or "", found.properties.content_type, found.properties.version)
            self._cache[name] = (time.monotonic(), secret)
            return secret

    async def _read(self, name: str) -> KeyVaultSecret:
        """One read through the SDK (with its retries), its failures told apart for the operator."""
        try:
            return await self._client.get_secret(name)
        except ResourceNotFoundError:
            raise SecretReadError("SecretNotFound",
                                  f"secret {name!r} not found in {self._vault}; create it or fix the "
                                  "GRAPH_CLIENT_SECRET_NAME / GRAPH_CERTIFICATE_SECRET_NAME setting") from None
        except ClientAuthenticationError as exc:
            if exc.status_code is None:  # no HTTP answer: the workload identity itself got no token
                raise SecretReadError("WorkloadIdentityUnavailable",
                                      f"the function's identity could not get a Key Vault token "
                                      f"({type(exc).__name__}); check AZURE_CLIENT_ID and that the "
                                      "user-assigned managed identity is attached to the app") from None
            raise SecretReadError(f"KeyVault{exc.status_code}",
                                  f"Key Vault {self._vault} refused the function's identity (HTTP "
                                  f"{exc.status_code}); grant it 'Key Vault Secrets User' on the vault"
                                  ) from None
        except HttpResponseError as exc:
            status = exc.status_code or 0
            if status in (401, 403):
                raise SecretReadError(f"KeyVault{status}",
                                      f"reading secret {name!r} from {self._vault} was refused with HTTP "
                                      f"{status}; grant the function's identity 'Key Vault Secrets User' on "
                                      "the vault") from None
            if status in (408, 429) or status >= 500:
                # An outage, throttling or a timeout, already retried with backoff by the SDK's policy: a
                # later attempt can succeed, and no role assignment would help.
                raise SecretReadError("KeyVaultUnavailable",
                                      f"Key Vault {self._vault} unavailable: reading secret {name!r} got HTTP "
                                      f"{status} after retries with backoff; the run retries later") from None
            raise SecretReadError(f"KeyVault{status}",
                                  f"reading secret {name!r} from {self._vault} failed with HTTP {status}; "
                                  "check KEY_VAULT_URL and the secret name settings") from None
        except AzureError as exc:
            raise SecretReadError("KeyVaultUnavailable",
                                  f"Key Vault {self._vault} unavailable: reading secret {name!r} failed "
                                  f"({type(exc).__name__}) after retries; the run retries later") from None

    async def close(self) -> None:
        await self._client.close()
