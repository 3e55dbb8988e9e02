"""Credentials against the local stack: real azure-identity, azure-keyvault-secrets and MSAL over HTTPS."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from shared.auth import GraphAuthError, MsalTokenProvider, SecretCache, SecretReadError, workload_credential
from shared.config import Settings, load_settings
from shared.runtime import get_engine
from tests.conftest import RunningStack
from tests.engine.conftest import engine_environ, set_vault_secret, unique

ROLES = ["User.Read.All", "Group.Read.All"]


async def provider_for(settings: Settings) -> tuple[MsalTokenProvider, SecretCache]:
    credential = workload_credential(settings)
    secrets = SecretCache(settings, credential)
    return MsalTokenProvider(settings, secrets), secrets


async def test_secret_from_key_vault_gets_a_cached_graph_token(engine_settings: Settings,
                                                               stack: RunningStack) -> None:
    engine = await get_engine(engine_settings)
    first = await engine.tokens.get(stack.env.tenant_id)
    second = await engine.tokens.get(stack.env.tenant_id)
    assert first is second and first.fresh()
    assert first.roles and "User.Read.All" in first.roles
    assert isinstance(engine.tokens, MsalTokenProvider) and engine.tokens.token_requests == 1
    assert engine.secrets is not None and engine.secrets.reads == 1
    assert "token=" not in repr(first) and first.token not in repr(first)


async def test_certificate_from_key_vault(stack: RunningStack, workload_env: None) -> None:
    settings = load_settings(engine_environ(stack, GRAPH_CREDENTIAL_TYPE="certificate"))
    tokens, secrets = await provider_for(settings)
    try:
        token = await tokens.get(stack.env.tenant_id)
        assert token.roles and "User.Read.All" in token.roles
    finally:
        await secrets.close()


async def test_pfx_certificate_secret_works_too(stack: RunningStack, workload_env: None,
                                                vault_writer: dict[str, Any]) -> None:
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    from devstack.stack import make_certificate

    key_pem, cert_pem = make_certificate("pfx-app")
    app = stack.admin.register_app(roles=ROLES, secret=False, certificate_pem=cert_pem)
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    pfx = pkcs12.serialize_key_and_certificates(None, key, cert, None,  # type: ignore[arg-type]
                                                serialization.NoEncryption())
    name = unique("pfx")
    await set_vault_secret(stack, vault_writer, name, base64.b64encode(pfx).decode(), "application/x-pkcs12")
    settings = load_settings(engine_environ(stack, GRAPH_CREDENTIAL_TYPE="certificate",
                                            GRAPH_CLIENT_ID=app["client_id"], GRAPH_CERTIFICATE_SECRET_NAME=name))
    tokens, secrets = await provider_for(settings)
    try:
        token = await tokens.get(stack.env.tenant_id)
        assert token.roles == frozenset(ROLES)
    finally:
        await secrets.close()


async def test_rotation_rereads_the_secret_once(stack: RunningStack, workload_env: None,
                                                vault_writer: dict[str, Any]) -> None:
    app = stack.admin.register_app(roles=ROLES, secret=True)
    name = unique("rotating")
    await set_vault_secret(stack, vault_writer, name, app["secret"]["value"])
    settings = load_settings(engine_environ(stack, GRAPH_CLIENT_ID=app["client_id"], GRAPH_CLIENT_SECRET_NAME=name))
    tokens, secrets = await provider_for(settings)
    try:
        old = await tokens.get(stack.env.tenant_id)
        assert secrets.reads == 1
        # The admin rotates: a new secret in Entra and Key Vault, then the old one revoked.
        new = stack.admin.entra("POST", f"/apps/{app['client_id']}/secrets", {}, expect=201)
        await set_vault_secret(stack, vault_writer, name, new["value"])
        stack.admin.entra("DELETE", f"/apps/{app['client_id']}/secrets/{app['secret']['key_id']}", expect=204)
        tokens.invalidate(stack.env.tenant_id, old)  # what a Graph 401 (or expiry) does
        fresh = await tokens.get(stack.env.tenant_id)
        assert fresh.token != old.token
        assert tokens.secret_rereads == 1 and secrets.reads == 2
    finally:
        await secrets.close()


async def test_revoked_secret_fails_with_entra_code_and_no_secret_text(stack: RunningStack, workload_env: None,
                                                                        vault_writer: dict[str, Any]) -> None:
    app = stack.admin.register_app(roles=ROLES, secret=True)
    name = unique("revoked")
    await set_vault_secret(stack, vault_writer, name, app["secret"]["value"])
    stack.admin.entra("DELETE", f"/apps/{app['client_id']}/secrets/{app['secret']['key_id']}", expect=204)
    settings = load_settings(engine_environ(stack, GRAPH_CLIENT_ID=app["client_id"], GRAPH_CLIENT_SECRET_NAME=name))
    tokens, secrets = await provider_for(settings)
    try:
        with pytest.raises(GraphAuthError) as info:
            await tokens.get(stack.env.tenant_id)
        assert info.value.code == "invalid_client"
        assert app["secret"]["value"] not in str(info.value)
        assert name in str(info.value)
        assert tokens.secret_rereads == 1 and secrets.reads == 2  # re-read once, not in a loop
    finally:
        await secrets.close()


async def test_missing_secret_names_the_setting(stack: RunningStack, workload_env: None) -> None:
    settings = load_settings(engine_environ(stack, GRAPH_CLIENT_SECRET_NAME="no-such-secret"))
    tokens, secrets = await provider_for(settings)
    try:
        with pytest.raises(SecretReadError) as info:
            await tokens.get(stack.env.tenant_id)
        assert info.value.code == "SecretNotFound" and "GRAPH_CLIENT_SECRET_NAME" in str(info.value)
    finally:
        await secrets.close()


async def test_no_secret_or_token_in_logs(stack: RunningStack, workload_env: None, vault_writer: dict[str, Any],
                                          caplog: pytest.LogCaptureFixture) -> None:
    app = stack.admin.register_app(roles=ROLES, secret=True)
    name = unique("logged")
    await set_vault_secret(stack, vault_writer, name, app["secret"]["value"])
    settings = load_settings(engine_environ(stack, GRAPH_CLIENT_ID=app["client_id"], GRAPH_CLIENT_SECRET_NAME=name))
    caplog.set_level(logging.DEBUG)
    tokens, secrets = await provider_for(settings)
    try:
        token = await tokens.get(stack.env.tenant_id)
    finally:
        await secrets.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "expected SDK debug logs to be captured"
    assert app["secret"]["value"] not in text
    assert token.token not in text and token.token.split(".")[2] not in text
    assert stack.env.workload_identity.client_secret not in text


async def test_tokens_near_expiry_are_replaced(stack: RunningStack, workload_env: None) -> None:
    """A token with less than five minutes left is never used: the next call fetches a new one from Entra."""
    app = stack.admin.register_app(roles=ROLES, secret=True)
    settings = load_settings(engine_environ(stack, GRAPH_CLIENT_ID=app["client_id"]))

    def issued() -> int:
        stats = stack.admin.entra("GET", "/stats")
        return int(stats["tokens_issued_per_app"].get(app["client_id"], 0))

    class FixedSecret(SecretCache):
        async def get(self, name: str, *, force: bool = False) -> Any:  # the new app's secret, not the vault's
            from shared.auth import Secret

            return Secret(app["secret"]["value"], None, None)

    secrets = FixedSecret(settings, workload_credential(settings))
    tokens = MsalTokenProvider(settings, secrets)
    lifetime = stack.admin.entra("GET", "/settings")["token_lifetime_seconds"]
    try:
        stack.admin.entra("PUT", "/settings", {"token_lifetime_seconds": 240})
        first = await tokens.get(stack.env.tenant_id)
        second = await tokens.get(stack.env.tenant_id)
        assert not first.fresh() and first.token != second.token and issued() == 2
        stack.admin.entra("PUT", "/settings", {"token_lifetime_seconds": 3599})
        third = await tokens.get(stack.env.tenant_id)
        assert await tokens.get(stack.env.tenant_id) is third and issued() == 3
    finally:
        stack.admin.entra("PUT", "/settings", {"token_lifetime_seconds": lifetime})
        await secrets.close()


async def test_a_broken_workload_identity_fails_clearly(stack: RunningStack, workload_env: None) -> None:
    import os

    from shared.runtime import close_engines
    from shared.sync import sync_partition
    from tests.engine.test_sync_stack import make_run

    os.environ["AZURE_CLIENT_SECRET"] = "wrong-secret-value"  # workload_env restores the real one afterwards
    settings = load_settings(engine_environ(stack))
    try:
        result = await sync_partition(settings, make_run(stack), "users", None)
    finally:
        await close_engines()
    assert result["status"] == "failed" and result.get("failure_scope") == "stream"
    assert result.get("error_code") == "WorkloadIdentityUnavailable" and result.get("retryable") is False
    assert "AZURE_CLIENT_ID" in result.get("error_message", "")
    assert "wrong-secret-value" not in repr(result)
