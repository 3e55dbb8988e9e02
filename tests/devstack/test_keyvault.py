"""The Key Vault emulator through the real azure-keyvault-secrets client (challenge auth, RBAC, errors)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from tests.conftest import RunningStack

VAULT_SCOPE = "https://vault.azure.net/.default"


def credential_for(
    stack: RunningStack, client_id: str, secret: str, tenant: str | None = None
) -> ClientSecretCredential:
    return ClientSecretCredential(
        tenant or stack.env.tenant_id, client_id, secret, authority=stack.env.authority_host,
        disable_instance_discovery=True, connection_verify=str(stack.ca),
    )


def secret_client(stack: RunningStack, credential: Any, **kwargs: Any) -> SecretClient:
    return SecretClient(
        stack.env.key_vault_url, credential, verify_challenge_resource=False, connection_verify=str(stack.ca), **kwargs
    )


def identity_with_role(stack: RunningStack, role: str | None) -> ClientSecretCredential:
    app = stack.admin.register_app()
    if role:
        stack.admin.keyvault("POST", "/roles", {"client_id": app["client_id"], "role": role}, expect=201)
    return credential_for(stack, app["client_id"], app["secret"]["value"])


@pytest.fixture(scope="module")
def officer(stack: RunningStack) -> SecretClient:
    return secret_client(stack, identity_with_role(stack, "Key Vault Secrets Officer"))


@pytest.fixture(scope="module")
def workload(stack: RunningStack) -> SecretClient:
    wid = stack.env.workload_identity
    return secret_client(stack, credential_for(stack, wid.client_id, wid.client_secret))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_workload_identity_reads_the_graph_credentials(stack: RunningStack, workload: SecretClient) -> None:
    secret = workload.get_secret(stack.env.graph_app.client_secret_name)
    assert secret.value and len(secret.value) == 40
    pattern = rf"{re.escape(stack.env.key_vault_url)}/secrets/graph-client-secret/[0-9a-f]{{32}}"
    assert secret.id is not None and re.fullmatch(pattern, secret.id)
    assert secret.properties.enabled is True
    assert secret.properties.recovery_level == "Recoverable+Purgeable"
    cert = workload.get_secret(stack.env.graph_app.certificate_secret_name)
    assert cert.properties.content_type == "application/x-pem-file"
    assert cert.value is not None
    assert "-----BEGIN PRIVATE KEY-----" in cert.value and "-----BEGIN CERTIFICATE-----" in cert.value


def test_set_get_versions_and_list(officer: SecretClient) -> None:
    name = unique("rotating")
    first = officer.set_secret(name, "one", content_type="text/plain", tags={"owner": "tests"})
    second = officer.set_secret(name, "two")
    assert first.properties.version != second.properties.version
    assert officer.get_secret(name).value == "two"
    assert officer.get_secret(name, first.properties.version).value == "one"
    old = officer.get_secret(name, first.properties.version)
    assert old.properties.content_type == "text/plain" and old.properties.tags == {"owner": "tests"}
    versions = {v.version for v in officer.list_properties_of_secret_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    names = {p.name for p in officer.list_properties_of_secrets()}
    assert {name, "graph-client-secret", "graph-client-certificate"} <= names


def test_listing_pages_follow_next_link(officer: SecretClient) -> None:
    name = unique("paged")
    for i in range(5):
        officer.set_secret(name, f"v{i}")
    pages = [list(page) for page in officer.list_properties_of_secret_versions(name, max_page_size=2).by_page()]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert len({v.version for page in pages for v in page}) == 5


def test_unknown_secret_is_404_secret_not_found(workload: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        workload.get_secret("does-not-exist")
    assert info.value.status_code == 404
    assert info.value.error is not None and info.value.error.code == "SecretNotFound"
    assert "A secret with (name/id) does-not-exist was not found in this key vault" in str(info.value.message)


def test_identity_without_role_is_403_forbidden(stack: RunningStack) -> None:
    client = secret_client(stack, identity_with_role(stack, None))
    with pytest.raises(HttpResponseError) as info:
        client.get_secret("graph-client-secret")
    assert info.value.status_code == 403
    assert info.value.error is not None and info.value.error.code == "Forbidden"
    assert "Caller is not authorized to perform action on resource" in str(info.value.message)
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in str(info.value.message)


def test_secrets_user_cannot_write_and_reader_cannot_read_values(stack: RunningStack, workload: SecretClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        workload.set_secret(unique("nope"), "x")
    assert info.value.status_code == 403 and "setSecret/action" in str(info.value.message)
    reader = secret_client(stack, identity_with_role(stack, "Key Vault Reader"))
    assert "graph-client-secret" in {p.name for p in reader.list_properties_of_secrets()}
    with pytest.raises(HttpResponseError) as info:
        reader.get_secret("graph-client-secret")
    assert info.value.status_code == 403


def test_vault_unavailable_switch(stack: RunningStack, workload: SecretClient) -> None:
    wid = stack.env.workload_identity
    no_retry = secret_client(stack, credential_for(stack, wid.client_id, wid.client_secret), retry_total=0)
    stack.admin.keyvault("PUT", "/faults", {"unavailable": True, "retry_after_seconds": 2})
    try:
        with pytest.raises(HttpResponseError) as info:
            no_retry.get_secret("graph-client-secret")
        assert info.value.status_code == 503
        response: Any = info.value.response
        assert response is not None and response.headers["Retry-After"] == "2"
    finally:
        stack.admin.keyvault("PUT", "/faults", {"unavailable": False, "retry_after_seconds": None})
    assert no_retry.get_secret("graph-client-secret").value


def test_delete_recover_and_purge(officer: SecretClient) -> None:
    name = unique("deleted")
    officer.set_secret(name, "gone soon")
    deleted = officer.begin_delete_secret(name).result()
    assert deleted.recovery_id is not None and deleted.recovery_id.endswith(f"/deletedsecrets/{name}")
    assert deleted.scheduled_purge_date is not None
    with pytest.raises(ResourceNotFoundError):
        officer.get_secret(name)
    with pytest.raises(HttpResponseError) as info:
        officer.set_secret(name, "reuse")
    assert info.value.status_code == 409
    officer.begin_recover_deleted_secret(name).result()
    assert officer.get_secret(name).value == "gone soon"
    officer.begin_delete_secret(name).result()
    officer.purge_deleted_secret(name)
    assert officer.set_secret(name, "fresh").value == "fresh"


def test_disabled_version_cannot_be_read(officer: SecretClient) -> None:
    name = unique("disabled")
    officer.set_secret(name, "x")
    officer.update_secret_properties(name, enabled=False)
    with pytest.raises(HttpResponseError) as info:
        officer.get_secret(name)
    assert info.value.status_code == 403
    assert "disabled" in str(info.value.message)


# ---- the wire: challenge, token validation, api-version -------------------------------------------------------------


@pytest.fixture()
def raw(stack: RunningStack) -> Iterator[Any]:
    with stack.http() as session:
        yield session


def _token(stack: RunningStack, scope: str, tenant: str | None = None) -> str:
    wid = stack.env.workload_identity
    return credential_for(stack, wid.client_id, wid.client_secret, tenant).get_token(scope).token


def test_unauthenticated_request_gets_bearer_challenge(stack: RunningStack, raw: Any) -> None:
    response = raw.get(f"{stack.env.key_vault_url}/secrets/graph-client-secret/", params={"api-version": "7.6"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{stack.env.authority_host}/{stack.env.tenant_id}", resource="https://vault.azure.net"'
    )
    assert response.json()["error"]["code"] == "Unauthorized"


def test_tokens_for_other_audiences_or_tenants_are_rejected(stack: RunningStack, raw: Any) -> None:
    url = f"{stack.env.key_vault_url}/secrets/graph-client-secret/"
    graph_token = _token(stack, "https://graph.microsoft.com/.default")
    response = raw.get(url, params={"api-version": "7.6"}, headers={"Authorization": f"Bearer {graph_token}"})
    assert response.status_code == 401 and "AKV10022" in response.json()["error"]["message"]
    other = stack.admin.entra("POST", "/tenants", {"domains": []}, expect=201)["tenant_id"]
    wid = stack.env.workload_identity
    stack.admin.entra("PUT", f"/apps/{wid.client_id}/grants/{other}", {"roles": []})
    foreign = _token(stack, VAULT_SCOPE, tenant=other)
    response = raw.get(url, params={"api-version": "7.6"}, headers={"Authorization": f"Bearer {foreign}"})
    assert response.status_code == 401 and "AKV10032" in response.json()["error"]["message"]
    tampered = _token(stack, VAULT_SCOPE)[:-4] + "AAAA"
    response = raw.get(url, params={"api-version": "7.6"}, headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401


def test_expired_token_is_rejected(stack: RunningStack, raw: Any) -> None:
    app = stack.admin.register_app()
    grant = {"client_id": app["client_id"], "role": "Key Vault Secrets User"}
    stack.admin.keyvault("POST", "/roles", grant, expect=201)
    stack.admin.entra("PUT", "/settings", {"token_lifetime_seconds": 1})
    try:
        token = credential_for(stack, app["client_id"], app["secret"]["value"]).get_token(VAULT_SCOPE).token
    finally:
        stack.admin.entra("PUT", "/settings", {"token_lifetime_seconds": 3599})
    time.sleep(1.5)
    response = raw.get(f"{stack.env.key_vault_url}/secrets/graph-client-secret/", params={"api-version": "7.6"},
                       headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Token is expired."


def test_api_version_is_required(stack: RunningStack, raw: Any) -> None:
    token = _token(stack, VAULT_SCOPE)
    url = f"{stack.env.key_vault_url}/secrets/graph-client-secret/"
    for params in ({}, {"api-version": "1999-01-01"}):
        response = raw.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BadParameter"
    ok = raw.get(url, params={"api-version": "7.5"}, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.json()["id"].startswith(f"{stack.env.key_vault_url}/secrets/graph-client-secret/")


def test_client_gives_up_on_a_credential_the_vault_rejects(stack: RunningStack) -> None:
    wid = stack.env.workload_identity
    wrong = ClientSecretCredential(
        stack.env.tenant_id, wid.client_id, "wrong", authority=stack.env.authority_host,
        disable_instance_discovery=True, connection_verify=str(stack.ca), retry_total=0,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        secret_client(stack, wrong).get_secret("graph-client-secret")
