"""Key Vault failures are told apart: an outage (5xx after the SDK's retries) is transient and says the vault is
unavailable; a refusal (403) names the role to grant. Real azure-keyvault-secrets against the vault emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from devstack.stack import WORKLOAD_VAULT_ROLE
from faultmatrix.lab import Lab, app_settings
from localrun.settings import applied
from shared.auth import SecretCache, SecretReadError, workload_credential
from shared.config import load_settings


@pytest.fixture()
def settings_env(lab: Lab) -> Iterator[dict[str, str]]:
    settings = app_settings(lab, "unused", {})
    with applied(settings):
        yield settings
    lab.reset_faults()


async def _read(settings_env: dict[str, str], lab: Lab) -> SecretReadError:
    settings = load_settings(settings_env)
    credential = workload_credential(settings)
    cache = SecretCache(settings, credential)
    try:
        with pytest.raises(SecretReadError) as caught:
            await cache.get(lab.env.graph_app.client_secret_name)
    finally:
        await cache.close()
        await credential.close()
    return caught.value


@pytest.mark.parametrize("status", [503, 500])
async def test_an_outage_is_transient_and_says_unavailable(lab: Lab, settings_env: dict[str, str],
                                                           status: int) -> None:
    lab.admin("keyvault", "PUT", "/faults", {"unavailable": True, "status": status, "retry_after_seconds": 0})
    error = await _read(settings_env, lab)
    assert error.code == "KeyVaultUnavailable"
    assert "unavailable" in str(error) and f"HTTP {status}" in str(error)
    assert "Secrets User" not in str(error), "an outage is not a missing role"


async def test_a_refusal_names_the_role_to_grant(lab: Lab, settings_env: dict[str, str]) -> None:
    grant = {"client_id": lab.env.workload_identity.client_id, "role": WORKLOAD_VAULT_ROLE}
    lab.admin("keyvault", "DELETE", "/roles", grant)
    try:
        error = await _read(settings_env, lab)
    finally:
        lab.admin("keyvault", "POST", "/roles", grant)
    assert error.code == "KeyVault403"
    assert "'Key Vault Secrets User'" in str(error)


def _vault_requests(lab: Lab) -> int:
    return sum(lab.admin("keyvault", "GET", "/stats")["requests"].values())


async def test_callers_queued_behind_a_failed_read_share_its_answer(lab: Lab, settings_env: dict[str, str]) -> None:
    """Partitions that queued while a read was retried through an outage get that read's failure, instead of each
    sitting through the SDK's retries in turn; a caller that comes later reads again."""
    lab.admin("keyvault", "PUT", "/faults", {"unavailable": True, "status": 503, "retry_after_seconds": 0})
    settings = load_settings(settings_env)
    credential = workload_credential(settings)
    cache = SecretCache(settings, credential)
    name = lab.env.graph_app.client_secret_name
    try:
        before = _vault_requests(lab)
        answers = await asyncio.gather(*(cache.get(name) for _ in range(5)), return_exceptions=True)
        one_read = _vault_requests(lab) - before
        assert all(isinstance(a, SecretReadError) and a.code == "KeyVaultUnavailable" for a in answers), answers
        assert 1 < one_read <= 10, "the SDK retried one read; the four queued callers made no request"
        with pytest.raises(SecretReadError):
            await cache.get(name)
        assert _vault_requests(lab) - before == 2 * one_read, "a caller arriving after the failure reads again"
        lab.admin("keyvault", "PUT", "/faults", {"unavailable": False})
        assert (await cache.get(name)).value
    finally:
        await cache.close()
        await credential.close()
