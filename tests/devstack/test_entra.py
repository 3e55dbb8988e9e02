"""The Entra emulator through the real MSAL and azure-identity clients over HTTPS."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import msal  # type: ignore[import-untyped]
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    EnvironmentCredential,
)

from devstack.stack import GRAPH_APP_ROLES, make_certificate
from tests.conftest import RunningStack, ca_session

GRAPH = "https://graph.microsoft.com/.default"
VAULT = "https://vault.azure.net/.default"
STORAGE = "https://storage.azure.com/.default"


def msal_app(
    stack: RunningStack, client_id: str, credential: Any, tenant: str | None = None
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{stack.env.authority_host}/{tenant or stack.env.tenant_id}",
        http_client=ca_session(stack.ca),
        instance_discovery=False,
    )


def verified_claims(stack: RunningStack, token: str, audience: str) -> dict[str, Any]:
    """Checks the signature against the keys published at the jwks_uri of the OIDC document, like a resource."""
    http = stack.http()
    config = http.get(f"{stack.env.authority_host}/{stack.env.tenant_id}/v2.0/.well-known/openid-configuration").json()
    jwks = http.get(config["jwks_uri"]).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience)
    return claims


def tokens_issued(stack: RunningStack, client_id: str) -> int:
    return int(stack.admin.entra("GET", f"/apps/{client_id}")["tokens_issued"])


def assert_aadsts(result: dict[str, Any], error: str, code: int) -> None:
    assert "access_token" not in result, result
    assert result["error"] == error, result
    assert result["error_codes"] == [code], result
    description = result["error_description"]
    assert description.startswith(f"AADSTS{code}: "), description
    assert "\r\nTrace ID: " in description and "\r\nCorrelation ID: " in description, description
    assert "\r\nTimestamp: " in description
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert result[key], key
    assert result["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"


# ---- client secret -------------------------------------------------------------------------------------------------


def test_secret_flow_issues_graph_token_with_granted_roles(stack: RunningStack) -> None:
    app = stack.admin.register_app(roles=list(GRAPH_APP_ROLES))
    result = msal_app(stack, app["client_id"], app["secret"]["value"]).acquire_token_for_client([GRAPH])
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    claims = verified_claims(stack, result["access_token"], "https://graph.microsoft.com")
    tid = stack.env.tenant_id
    assert claims["iss"] == f"https://sts.windows.net/{tid}/"
    assert claims["tid"] == tid
    assert claims["appid"] == claims["azp"] == app["client_id"]
    assert claims["oid"] == app["principals"][tid]["object_id"]
    assert claims["idtyp"] == "app"
    assert claims["ver"] == "1.0"
    assert claims["roles"] == sorted(GRAPH_APP_ROLES)
    assert "scp" not in claims
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 3599
    assert abs(claims["iat"] - time.time()) < 120
    header = jwt.get_unverified_header(result["access_token"])
    assert header["alg"] == "RS256" and header["typ"] == "JWT" and header["kid"]


def test_second_token_comes_from_msal_cache(stack: RunningStack) -> None:
    app = stack.admin.register_app(roles=["User.Read.All"])
    client = msal_app(stack, app["client_id"], app["secret"]["value"])
    first = client.acquire_token_for_client([GRAPH])
    second = client.acquire_token_for_client([GRAPH])
    assert first["token_source"] == "identity_provider"
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    assert tokens_issued(stack, app["client_id"]) == 1


def test_roles_only_on_graph_tokens(stack: RunningStack) -> None:
    app = stack.admin.register_app(roles=["User.Read.All"])
    client = msal_app(stack, app["client_id"], app["secret"]["value"])
    for scope, aud in ((VAULT, "https://vault.azure.net"), (STORAGE, "https://storage.azure.com")):
        claims = verified_claims(stack, client.acquire_token_for_client([scope])["access_token"], aud)
        assert claims["aud"] == aud
        assert "roles" not in claims


def test_app_without_granted_roles_gets_graph_token_without_roles(stack: RunningStack) -> None:
    app = stack.admin.register_app(roles=[])
    result = msal_app(stack, app["client_id"], app["secret"]["value"]).acquire_token_for_client([GRAPH])
    assert "roles" not in verified_claims(stack, result["access_token"], "https://graph.microsoft.com")


def test_graph_app_id_scope_keeps_the_requested_audience_form(stack: RunningStack) -> None:
    app = stack.admin.register_app(roles=["User.Read.All"])
    result = msal_app(stack, app["client_id"], app["secret"]["value"]).acquire_token_for_client(
        ["00000003-0000-0000-c000-000000000000/.default"]
    )
    claims = verified_claims(stack, result["access_token"], "00000003-0000-0000-c000-000000000000")
    assert claims["roles"] == ["User.Read.All"]


def test_bad_secret_is_aadsts7000215(stack: RunningStack) -> None:
    app = stack.admin.register_app()
    result = msal_app(stack, app["client_id"], "not-the-secret").acquire_token_for_client([GRAPH])
    assert_aadsts(result, "invalid_client", 7000215)
    assert app["client_id"] in result["error_description"]


def test_unknown_app_is_aadsts700016(stack: RunningStack) -> None:
    client_id = str(uuid.uuid4())
    result = msal_app(stack, client_id, "whatever").acquire_token_for_client([GRAPH])
    assert_aadsts(result, "unauthorized_client", 700016)
    assert client_id in result["error_description"]


def test_disabled_app_is_unauthorized_client(stack: RunningStack) -> None:
    app = stack.admin.register_app()
    stack.admin.entra("PATCH", f"/apps/{app['client_id']}", {"disabled": True})
    result = msal_app(stack, app["client_id"], app["secret"]["value"]).acquire_token_for_client([GRAPH])
    assert_aadsts(result, "unauthorized_client", 7000112)


def test_secret_rotation_new_secret_works_old_one_revoked(stack: RunningStack) -> None:
    app = stack.admin.register_app()
    cid, old = app["client_id"], app["secret"]
    new = stack.admin.entra("POST", f"/apps/{cid}/secrets", {}, expect=201)
    assert "access_token" in msal_app(stack, cid, old["value"]).acquire_token_for_client([VAULT])
    assert "access_token" in msal_app(stack, cid, new["value"]).acquire_token_for_client([VAULT])
    stack.admin.entra("DELETE", f"/apps/{cid}/secrets/{old['key_id']}", expect=204)
    assert_aadsts(msal_app(stack, cid, old["value"]).acquire_token_for_client([VAULT]), "invalid_client", 7000215)
    assert "access_token" in msal_app(stack, cid, new["value"]).acquire_token_for_client([VAULT])
    summary = stack.admin.entra("GET", f"/apps/{cid}")
    assert [s["key_id"] for s in summary["secrets"]] == [new["key_id"]]
    assert "value" not in json.dumps(summary["secrets"])  # the admin API never echoes stored secret values


def test_expired_secret_is_aadsts7000222(stack: RunningStack) -> None:
    app = stack.admin.register_app(secret=False)
    expired = stack.admin.entra("POST", f"/apps/{app['client_id']}/secrets", {"lifetime_seconds": -1}, expect=201)
    result = msal_app(stack, app["client_id"], expired["value"]).acquire_token_for_client([GRAPH])
    assert_aadsts(result, "invalid_client", 7000222)


def test_per_app_token_lifetime(stack: RunningStack) -> None:
    short = stack.admin.register_app()
    other = stack.admin.register_app()
    stack.admin.entra("PATCH", f"/apps/{short['client_id']}", {"token_lifetime_seconds": 120})
    short_token = msal_app(stack, short["client_id"], short["secret"]["value"]).acquire_token_for_client([VAULT])
    other_token = msal_app(stack, other["client_id"], other["secret"]["value"]).acquire_token_for_client([VAULT])
    assert short_token["expires_in"] == 120 and other_token["expires_in"] == 3599
    claims = jwt.decode(short_token["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    # Below MSAL's 5-minute refresh margin the cache never serves the token: every call goes to Entra.
    msal_app(stack, short["client_id"], short["secret"]["value"]).acquire_token_for_client([VAULT])
    again = msal_app(stack, short["client_id"], short["secret"]["value"])
    assert again.acquire_token_for_client([VAULT])["token_source"] == "identity_provider"
    assert again.acquire_token_for_client([VAULT])["token_source"] == "identity_provider"


def test_identity_provider_outage(stack: RunningStack) -> None:
    app = stack.admin.register_app()
    client = msal_app(stack, app["client_id"], app["secret"]["value"])  # discovery happens here, before the outage
    stack.admin.entra("PUT", "/faults", {"unavailable": True, "retry_after_seconds": 1})
    try:
        response = stack.http().post(f"{stack.env.authority_host}/{stack.env.tenant_id}/oauth2/v2.0/token",
                                     data={"grant_type": "client_credentials"})
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert_aadsts(response.json(), "temporarily_unavailable", 90033)
        with pytest.raises(msal.exceptions.MsalServiceError, match="503"):  # MSAL raises on 5xx, no error dict
            client.acquire_token_for_client([GRAPH])
    finally:
        stack.admin.entra("PUT", "/faults", {"unavailable": False, "retry_after_seconds": None})
    # A fresh client: MSAL remembers a Retry-After answer and would short-circuit calls inside that window.
    recovered = msal_app(stack, app["client_id"], app["secret"]["value"]).acquire_token_for_client([GRAPH])
    assert "access_token" in recovered


# ---- scopes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "error", "code"),
    [
        (["https://graph.microsoft.com/User.Read.All"], "invalid_scope", 1002012),
        ([GRAPH, VAULT], "invalid_scope", 70011),
        (["https://management.contoso.example/.default"], "invalid_resource", 500011),
    ],
)
def test_wrong_scope(stack: RunningStack, scopes: list[str], error: str, code: int) -> None:
    app = stack.admin.register_app()
    result = msal_app(stack, app["client_id"], app["secret"]["value"]).acquire_token_for_client(scopes)
    assert_aadsts(result, error, code)


# ---- raw protocol errors ---------------------------------------------------------------------------------------


def test_protocol_errors_use_aadsts_bodies(stack: RunningStack) -> None:
    app = stack.admin.register_app()
    url = f"{stack.env.authority_host}/{stack.env.tenant_id}/oauth2/v2.0/token"
    http = stack.http()
    base = {"client_id": app["client_id"], "client_secret": app["secret"]["value"], "scope": GRAPH}
    cases = [
        ({**base, "grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        (base, 400, "invalid_request", 900144),
        ({**base, "grant_type": "client_credentials", "scope": ""}, 400, "invalid_request", 900144),
        ({"grant_type": "client_credentials", "client_id": app["client_id"], "scope": GRAPH}, 401,
         "invalid_client", 7000218),
    ]
    for form, status, error, code in cases:
        response = http.post(url, data=form)
        assert response.status_code == status, (form, response.text)
        assert_aadsts(response.json(), error, code)
        assert response.headers["Cache-Control"] == "no-store, no-cache"
    unknown_tenant = http.post(f"{stack.env.authority_host}/{uuid.uuid4()}/oauth2/v2.0/token",
                               data={**base, "grant_type": "client_credentials"})
    assert unknown_tenant.status_code == 400
    assert_aadsts(unknown_tenant.json(), "invalid_request", 90002)


def test_client_secret_basic_auth_and_domain_authority(stack: RunningStack) -> None:
    app = stack.admin.register_app()
    tenants = stack.admin.entra("GET", "/tenants")["value"]
    domain = next(t for t in tenants if t["tenant_id"] == stack.env.tenant_id)["domains"][0]
    auth = base64.b64encode(f"{app['client_id']}:{app['secret']['value']}".encode()).decode()
    response = stack.http().post(
        f"{stack.env.authority_host}/{domain}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": STORAGE},
        headers={"Authorization": f"Basic {auth}"},
    )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["tid"] == stack.env.tenant_id


def test_unknown_tenant_fails_msal_discovery(stack: RunningStack) -> None:
    tenant = str(uuid.uuid4())
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        msal_app(stack, str(uuid.uuid4()), "x", tenant=tenant)
    response = stack.http().get(f"{stack.env.authority_host}/{tenant}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    assert_aadsts(response.json(), "invalid_tenant", 90002)


# ---- certificates ----------------------------------------------------------------------------------------------


def test_certificate_flow_rs256_thumbprint(stack: RunningStack) -> None:
    key_pem, cert_pem = make_certificate("test-cert")
    app = stack.admin.register_app(roles=["Mail.Read"], secret=False, certificate_pem=cert_pem)
    credential = {"private_key": key_pem, "thumbprint": app["certificate"]["thumbprint"]}
    result = msal_app(stack, app["client_id"], credential).acquire_token_for_client([GRAPH])
    assert "access_token" in result, result
    claims = verified_claims(stack, result["access_token"], "https://graph.microsoft.com")
    assert claims["appid"] == app["client_id"]
    assert claims["roles"] == ["Mail.Read"]


def test_certificate_flow_ps256_with_public_certificate(stack: RunningStack) -> None:
    key_pem, cert_pem = make_certificate("test-cert-sni")
    app = stack.admin.register_app(secret=False, certificate_pem=cert_pem)
    credential = {"private_key": key_pem, "public_certificate": cert_pem}
    result = msal_app(stack, app["client_id"], credential).acquire_token_for_client([VAULT])
    assert "access_token" in result, result


def test_assertion_signed_by_another_key_is_aadsts700027(stack: RunningStack) -> None:
    _, cert_pem = make_certificate("registered")
    other_key, _ = make_certificate("attacker")
    app = stack.admin.register_app(secret=False, certificate_pem=cert_pem)
    credential = {"private_key": other_key, "thumbprint": app["certificate"]["thumbprint"]}
    result = msal_app(stack, app["client_id"], credential).acquire_token_for_client([GRAPH])
    assert_aadsts(result, "invalid_client", 700027)
    assert "signature validation" in result["error_description"]


def test_unregistered_certificate_is_aadsts700027(stack: RunningStack) -> None:
    _, registered = make_certificate("registered")
    key_pem, unregistered = make_certificate("unregistered")
    app = stack.admin.register_app(secret=False, certificate_pem=registered)
    result = msal_app(stack, app["client_id"], {"private_key": key_pem, "public_certificate": unregistered}
                      ).acquire_token_for_client([GRAPH])
    assert_aadsts(result, "invalid_client", 700027)
    assert "not registered on application" in result["error_description"]


def _assertion(key_pem: str, thumbprint: str, **claims: Any) -> str:
    x5t = base64.urlsafe_b64encode(bytes.fromhex(thumbprint)).decode()
    return jwt.encode(claims, key_pem, algorithm="RS256", headers={"x5t": x5t})


def test_assertion_claims_are_checked(stack: RunningStack) -> None:
    key_pem, cert_pem = make_certificate("claims")
    app = stack.admin.register_app(secret=False, certificate_pem=cert_pem)
    cid, thumb = app["client_id"], app["certificate"]["thumbprint"]
    token_url = f"{stack.env.authority_host}/{stack.env.tenant_id}/oauth2/v2.0/token"
    now = int(time.time())
    good = {"aud": token_url, "iss": cid, "sub": cid, "jti": str(uuid.uuid4()), "nbf": now, "exp": now + 600}
    cases = [
        (good, None),
        ({**good, "aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}, 700023),
        ({**good, "iss": str(uuid.uuid4()), "sub": str(uuid.uuid4())}, 700021),
        ({**good, "nbf": now - 7200, "exp": now - 3600}, 700024),
    ]
    http = stack.http()
    for claims, code in cases:
        response = http.post(token_url, data={
            "grant_type": "client_credentials", "client_id": cid, "scope": GRAPH,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": _assertion(key_pem, thumb, **claims),
        })
        if code is None:
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 401, response.text
            assert_aadsts(response.json(), "invalid_client", code)


# ---- tenants ---------------------------------------------------------------------------------------------------


def test_multi_tenant_app_needs_consent_in_the_data_tenant(stack: RunningStack) -> None:
    isv = stack.admin.entra("POST", "/tenants", {"domains": ["isv-test.onmicrosoft.com"]}, expect=201)
    app = stack.admin.entra("POST", "/apps", {"display_name": "isv app", "home_tenant": isv["tenant_id"],
                                              "roles": ["Directory.Read.All"], "secret": True}, expect=201)
    cid, secret = app["client_id"], app["secret"]["value"]
    home = msal_app(stack, cid, secret, tenant=isv["tenant_id"]).acquire_token_for_client([GRAPH])
    assert jwt.decode(home["access_token"], options={"verify_signature": False})["tid"] == isv["tenant_id"]
    not_consented = msal_app(stack, cid, secret).acquire_token_for_client([GRAPH])
    assert_aadsts(not_consented, "unauthorized_client", 700016)
    stack.admin.entra("PUT", f"/apps/{cid}/grants/{stack.env.tenant_id}", {"roles": ["User.Read.All"]})
    consented = msal_app(stack, cid, secret).acquire_token_for_client([GRAPH])
    claims = verified_claims(stack, consented["access_token"], "https://graph.microsoft.com")
    assert claims["tid"] == stack.env.tenant_id
    assert claims["roles"] == ["User.Read.All"]  # the data tenant's grant, not the home tenant's
    assert claims["oid"] != app["principals"][isv["tenant_id"]]["object_id"]


# ---- azure-identity --------------------------------------------------------------------------------------------


def test_azure_identity_client_secret_credential_vault_and_storage(stack: RunningStack) -> None:
    wid = stack.env.workload_identity
    credential = ClientSecretCredential(
        stack.env.tenant_id, wid.client_id, wid.client_secret, authority=stack.env.authority_host,
        disable_instance_discovery=True, connection_verify=str(stack.ca),
    )
    for scope, aud in ((VAULT, "https://vault.azure.net"), (STORAGE, "https://storage.azure.com")):
        token = credential.get_token(scope)
        assert token.expires_on - time.time() > 3000
        assert verified_claims(stack, token.token, aud)["appid"] == wid.client_id


def test_environment_credential_uses_authority_host(stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in stack.env.workload_environment().items():
        monkeypatch.setenv(name, value)
    before = stack.admin.entra("GET", "/stats")["requests"]
    credential = EnvironmentCredential(disable_instance_discovery=True, connection_verify=str(stack.ca))
    token = credential.get_token(STORAGE)
    assert verified_claims(stack, token.token, "https://storage.azure.com")["tid"] == stack.env.tenant_id
    after = stack.admin.entra("GET", "/stats")["requests"]
    grew = {k for k, v in after.items() if v > before.get(k, 0)}
    # What azure-identity really requested: OIDC discovery, then the v2 token endpoint.
    assert "GET /{tenant}/v2.0/.well-known/openid-configuration" in grew
    assert "POST /{tenant}/oauth2/v2.0/token" in grew


def test_default_azure_credential_picks_up_the_workload_identity(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a non-Microsoft authority host MSAL's instance discovery would call login.microsoftonline.com,
    so the flag is required locally (in Azure the host is known and the flag is harmless)."""
    for name, value in stack.env.workload_environment().items():
        monkeypatch.setenv(name, value)
    credential = DefaultAzureCredential(disable_instance_discovery=True, connection_verify=str(stack.ca))
    token = credential.get_token(VAULT)
    assert verified_claims(stack, token.token, "https://vault.azure.net")["appid"] == (
        stack.env.workload_identity.client_id)


def test_azure_identity_certificate_credential_and_failure(stack: RunningStack) -> None:
    key_pem, cert_pem = make_certificate("azid")
    app = stack.admin.register_app(secret=False, certificate_pem=cert_pem)
    credential = CertificateCredential(
        stack.env.tenant_id, app["client_id"], certificate_data=(key_pem + cert_pem).encode(),
        authority=stack.env.authority_host, disable_instance_discovery=True, connection_verify=str(stack.ca),
    )
    claims = verified_claims(stack, credential.get_token(VAULT).token, "https://vault.azure.net")
    assert claims["appid"] == app["client_id"]
    wrong = ClientSecretCredential(
        stack.env.tenant_id, app["client_id"], "wrong", authority=stack.env.authority_host,
        disable_instance_discovery=True, connection_verify=str(stack.ca), retry_total=0,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        wrong.get_token(VAULT)
