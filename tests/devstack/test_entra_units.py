"""Pure rules without servers: token verification, scope resolution, the grant's credential checks, registry."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt
import pytest

from devstack.entra import errors
from devstack.entra.grant import TokenRequest, issue_token, resolve_resource
from devstack.registry import Registry, RegistryError
from devstack.stack import make_certificate
from devstack.tokens import (
    GRAPH_RESOURCE,
    STORAGE_RESOURCE,
    VAULT_RESOURCE,
    InvalidToken,
    KeySet,
    SigningKey,
    TokenVerifier,
    access_token_claims,
)

TENANT = "11111111-1111-4111-8111-111111111111"


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return KeySet([SigningKey.generate()])


def token(keys: KeySet, *, audience: str = GRAPH_RESOURCE, lifetime: int = 600, now: int | None = None,
          tenant: str = TENANT) -> str:
    claims = access_token_claims(tenant_id=tenant, client_id="c", object_id="o", audience=audience,
                                 roles=["User.Read.All"], lifetime_seconds=lifetime, now=now)
    return keys.active.sign(claims)


# ---- TokenVerifier ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aud", [GRAPH_RESOURCE, GRAPH_RESOURCE + "/", "00000003-0000-0000-c000-000000000000"])
def test_graph_accepts_every_audience_form(keys: KeySet, aud: str) -> None:
    assert TokenVerifier(keys).verify(token(keys, audience=aud), GRAPH_RESOURCE)["roles"] == ["User.Read.All"]


def test_expiry_and_not_before_follow_the_clock(keys: KeySet) -> None:
    now = int(time.time())
    t = token(keys, lifetime=60, now=now)
    assert TokenVerifier(keys, clock=lambda: now + 59).verify(t, GRAPH_RESOURCE)
    with pytest.raises(InvalidToken) as info:
        TokenVerifier(keys, clock=lambda: now + 60).verify(t, GRAPH_RESOURCE)
    assert info.value.reason == InvalidToken.EXPIRED
    with pytest.raises(InvalidToken) as info:
        TokenVerifier(keys, clock=lambda: now - 10).verify(t, GRAPH_RESOURCE)
    assert info.value.reason == InvalidToken.NOT_YET_VALID
    assert TokenVerifier(keys, clock=lambda: now + 100, leeway_seconds=300).verify(t, GRAPH_RESOURCE)


def test_rejections_carry_a_reason(keys: KeySet) -> None:
    verifier = TokenVerifier(keys, tenants=[TENANT])
    other_keys = KeySet([SigningKey.generate()])
    forged_kid = jwt.encode({"aud": GRAPH_RESOURCE}, other_keys.active.private_key, algorithm="RS256",
                            headers={"kid": keys.active.kid})
    cases = {
        "not a jwt": InvalidToken.MALFORMED,
        token(other_keys): InvalidToken.BAD_SIGNATURE,
        forged_kid: InvalidToken.BAD_SIGNATURE,
        jwt.encode({"aud": GRAPH_RESOURCE}, "k" * 32, algorithm="HS256"): InvalidToken.BAD_SIGNATURE,
        token(keys, audience=VAULT_RESOURCE): InvalidToken.WRONG_AUDIENCE,
        token(keys, tenant=str(uuid.uuid4())): InvalidToken.WRONG_ISSUER,
    }
    for bad, reason in cases.items():
        with pytest.raises(InvalidToken) as info:
            verifier.verify(bad, GRAPH_RESOURCE)
        assert info.value.reason == reason, bad


def test_rotated_keys_still_verify_old_tokens(keys: KeySet) -> None:
    keyset = KeySet([SigningKey.generate()])
    old = token(keyset)
    keyset.rotate(SigningKey.generate())
    new = token(keyset)
    verifier = TokenVerifier(keyset)
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"]
    assert verifier.verify(old, GRAPH_RESOURCE) and verifier.verify(new, GRAPH_RESOURCE)
    assert len(keyset.jwks()["keys"]) == 2


def test_signing_key_persists(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = SigningKey.load_or_create(path)
    second = SigningKey.load_or_create(path)
    assert first.kid == second.kid
    assert path.stat().st_mode & 0o077 == 0


# ---- scopes -----------------------------------------------------------------------------------------------------


def test_resolve_resource() -> None:
    assert resolve_resource("https://graph.microsoft.com/.default").canonical == GRAPH_RESOURCE
    assert resolve_resource("https://graph.microsoft.com//.default").audience == GRAPH_RESOURCE
    assert resolve_resource("00000003-0000-0000-c000-000000000000/.default").canonical == GRAPH_RESOURCE
    assert resolve_resource("https://storage.azure.com/.default offline_access").canonical == STORAGE_RESOURCE
    assert resolve_resource("https://unknown.example/.default").canonical == "https://unknown.example"
    for bad, code in (("", 900144), ("User.Read", 1002012), (f"{GRAPH_RESOURCE}/.default {VAULT_RESOURCE}/.default",
                                                                70011)):
        with pytest.raises(errors.AadError) as info:
            resolve_resource(bad)
        assert info.value.code == code


# ---- grant ------------------------------------------------------------------------------------------------------


def _registry(tmp_path: Path | None = None) -> Registry:
    registry = Registry(tmp_path / "r.json" if tmp_path else None)
    registry.add_tenant(TENANT, ["contoso.onmicrosoft.com"])
    return registry


def test_issue_token_resolves_tenant_by_domain_and_counts(keys: KeySet) -> None:
    registry = _registry()
    app = registry.register_app(display_name="a", home_tenant=TENANT, roles=["Mail.Read"])
    secret = registry.add_secret(app.client_id)
    form = {"grant_type": "client_credentials", "client_id": app.client_id, "client_secret": secret.value,
            "scope": "https://graph.microsoft.com/.default"}
    body = issue_token(TokenRequest("Contoso.onmicrosoft.com", form, frozenset()), registry, keys, now=1_000)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["tid"] == TENANT and claims["roles"] == ["Mail.Read"] and claims["exp"] == 1_000 + 3599
    assert claims["app_displayname"] == "a"
    assert app.tokens_issued == 1


def test_assertion_with_unknown_thumbprint_names_it(keys: KeySet) -> None:
    registry = _registry()
    key_pem, cert_pem = make_certificate("x")
    app = registry.register_app(display_name="a", home_tenant=TENANT)
    assertion = jwt.encode({"aud": "x", "iss": app.client_id, "sub": app.client_id, "exp": 2**31},
                           key_pem, algorithm="RS256", headers={"x5t": "AAAA"})
    form = {"grant_type": "client_credentials", "client_id": app.client_id, "scope": f"{VAULT_RESOURCE}/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}
    with pytest.raises(errors.AadError) as info:
        issue_token(TokenRequest(TENANT, form, frozenset()), registry, keys)
    assert info.value.code == 700027 and "000000" in info.value.message
    assert cert_pem  # registered nothing on purpose


def test_registry_persists_and_validates(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    app = registry.register_app(display_name="a", home_tenant=TENANT, roles=["b", "a", "a"])
    registry.add_secret(app.client_id, "s3cret-value")
    _, cert_pem = make_certificate("p")
    cert = registry.add_certificate(app.client_id, cert_pem)
    reloaded = Registry(tmp_path / "r.json")
    again = reloaded.apps[app.client_id]
    assert again.principals[TENANT].roles == ["a", "b"]
    assert again.secrets[0].matches("s3cret-value") and not again.secrets[0].matches("other")
    assert again.certificate(cert.thumbprint.lower()) is not None
    assert reloaded.resolve_tenant("CONTOSO.onmicrosoft.com") is not None
    with pytest.raises(RegistryError, match="home_tenant"):
        reloaded.register_app(display_name="x", home_tenant=str(uuid.uuid4()))
    with pytest.raises(RegistryError, match="certificate"):
        reloaded.add_certificate(app.client_id, "not a pem")
    with pytest.raises(RegistryError, match="tenant_id"):
        reloaded.add_tenant("not-a-guid", [])
