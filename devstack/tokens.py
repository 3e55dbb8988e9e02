"""Access-token signing and verification shared by the Entra, Key Vault and Graph emulators.

The Entra emulator signs with a `SigningKey`; every resource emulator in the same process checks tokens through
a `TokenVerifier` bound to the same key set, so a key rotation or restart (keys persist with the state dir) is
seen everywhere at once, exactly as resources trust the keys published at Entra's jwks endpoint.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

GRAPH_RESOURCE = "https://graph.microsoft.com"
VAULT_RESOURCE = "https://vault.azure.net"
STORAGE_RESOURCE = "https://storage.azure.com"

# First-party application ids Entra may put in `aud` instead of the resource URI (v1 tokens carry either form).
_RESOURCE_APP_IDS: dict[str, str] = {
    GRAPH_RESOURCE: "00000003-0000-0000-c000-000000000000",
    VAULT_RESOURCE: "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
    STORAGE_RESOURCE: "e406a681-f3d4-42a8-90b6-c2b029497af1",
}

ISSUER_PREFIX = "https://sts.windows.net/"
# Real resources accept ~5 minutes of clock skew; the emulators share one clock, so none is allowed by default,
# which lets short-lived-token fault tests see expiry promptly.
CLOCK_SKEW_SECONDS = 0


@functools.lru_cache(maxsize=64)
def audience_forms(resource: str) -> frozenset[str]:
    """Every `aud` value a real resource accepts for itself: URI with/without trailing slash and its app id."""
    base = resource.rstrip("/")
    forms = {base, base + "/"}
    app_id = _RESOURCE_APP_IDS.get(base)
    if app_id:
        forms.add(app_id)
    for uri, app in _RESOURCE_APP_IDS.items():
        if base == app:
            forms.update({uri, uri + "/"})
    return frozenset(forms)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class InvalidToken(Exception):
    """A bearer token a resource must reject; `reason` is one of the class constants below (safe to log)."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    BAD_SIGNATURE = "bad signature"
    WRONG_AUDIENCE = "wrong audience"
    WRONG_ISSUER = "wrong issuer"
    MALFORMED = "malformed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def self_signed(common_name: str, days: int) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh RSA key and a self-signed certificate for it (token signing keys, app credentials)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return key, cert


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An RSA key with a self-signed certificate, published like Entra's keys (kid = x5t = SHA-1 thumbprint)."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(*self_signed("accounts.devstack.local", days=3650))

    @classmethod
    def load_or_create(cls, path: Path | None) -> SigningKey:
        """Persisted under the state dir so tokens issued before a restart still verify after it."""
        if path is not None and path.exists():
            data = path.read_bytes()
            key = serialization.load_pem_private_key(data, password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path}: signing key must be RSA; delete the file to regenerate it")
            return cls(key, x509.load_pem_x509_certificate(data))
        created = cls.generate()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(created.pem())
            tmp.chmod(0o600)
            tmp.replace(path)
        return created

    def pem(self) -> bytes:
        key = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return key + self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def kid(self) -> str:
        return b64url(self.certificate.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1 by definition

    def jwk(self, issuer: str | None = None) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        jwk: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "x5c": [base64.b64encode(der).decode("ascii")],
        }
        if issuer is not None:
            jwk["issuer"] = issuer
        return jwk

    def sign(self, claims: Mapping[str, Any]) -> str:
        headers = {"typ": "JWT", "kid": self.kid, "x5t": self.kid}
        return jwt.encode(dict(claims), self.private_key, algorithm="RS256", headers=headers)


class KeySet:
    """The keys Entra currently publishes; the first one signs, all of them verify (rollover)."""

    def __init__(self, keys: Iterable[SigningKey]) -> None:
        self._keys = list(keys)
        if not self._keys:
            raise ValueError("KeySet needs at least one signing key")
        # Bumped on every change, so verifiers holding results checked against older keys know to drop them.
        self.version = 0

    @property
    def active(self) -> SigningKey:
        return self._keys[0]

    def find(self, kid: str) -> SigningKey | None:
        return next((k for k in self._keys if k.kid == kid), None)

    def rotate(self, new_key: SigningKey) -> None:
        self._keys.insert(0, new_key)
        self.version += 1

    def jwks(self, issuer: str | None = None) -> dict[str, Any]:
        return {"keys": [k.jwk(issuer) for k in self._keys]}


def access_token_claims(
    *,
    tenant_id: str,
    client_id: str,
    object_id: str,
    audience: str,
    roles: Iterable[str],
    lifetime_seconds: int,
    now: int | None = None,
) -> dict[str, Any]:
    """App-only v1 access-token claims as Entra issues them for client credentials (roles only when granted)."""
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": f"{ISSUER_PREFIX}{tenant_id}/",
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_seconds,
        "aio": b64url(hashlib.sha256(f"{client_id}{issued}".encode()).digest()[:24]),
        "app_displayname": None,
        "appid": client_id,
        "appidacr": "1",
        "azp": client_id,
        "azpacr": "1",
        "idp": f"{ISSUER_PREFIX}{tenant_id}/",
        "idtyp": "app",
        "oid": object_id,
        "rh": "0.devstack.",
        "sub": object_id,
        "tid": tenant_id,
        "uti": b64url(uuid.uuid4().bytes)[:22],
        "ver": "1.0",
    }
    role_list = sorted(set(roles))
    if role_list:
        claims["roles"] = role_list
    return {k: v for k, v in claims.items() if v is not None}


class TokenVerifier:
    """Checks a bearer token the way an Entra-protected resource does: RS256 signature by a published key,
    audience (any accepted form of the resource), issuer `https://sts.windows.net/{tid}/`, nbf/exp with skew.

    `tenants`, when given, limits which tenants' tokens are accepted (a resource belongs to one tenant);
    callers that serve several tenants compare `claims["tid"]` themselves.

    Clients reuse one token for an hour, so the signature check (the costly part) is done once per token and key
    set: the decoded claims of tokens whose signature verified are kept, bounded, by raw token string. Lifetime,
    audience and issuer are checked on every call, so a remembered token that expires is refused like any other.
    """

    CACHE_SIZE = 4096

    def __init__(
        self,
        keys: KeySet,
        *,
        tenants: Iterable[str] | None = None,
        leeway_seconds: int = CLOCK_SKEW_SECONDS,
        clock: Any = time.time,
    ) -> None:
        self._keys = keys
        self._tenants = frozenset(tenants) if tenants is not None else None
        self._leeway = leeway_seconds
        self._clock = clock
        self._verified: dict[str, dict[str, Any]] = {}
        self._verified_version = keys.version

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        if self._verified_version != self._keys.version:
            self._verified = {}
            self._verified_version = self._keys.version
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            if len(self._verified) >= self.CACHE_SIZE:
                self._verified = {}
            self._verified[token] = claims
        self._check_claims(claims, audience)
        return dict(claims)

    def _verify_signature(self, token: str) -> dict[str, Any]:
        """The token's claims once its RS256 signature checks out against a published key; raises otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(InvalidToken.MALFORMED) from exc
        if header.get("alg") != "RS256":
            raise InvalidToken(InvalidToken.BAD_SIGNATURE)
        key = self._keys.find(str(header.get("kid", "")))
        if key is None:
            raise InvalidToken(InvalidToken.BAD_SIGNATURE)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken(InvalidToken.BAD_SIGNATURE) from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(InvalidToken.MALFORMED) from exc
        return claims

    def _check_claims(self, claims: dict[str, Any], audience: str) -> None:
        exp, nbf, tid, iss = claims.get("exp"), claims.get("nbf"), claims.get("tid"), claims.get("iss")
        if not isinstance(exp, int | float) or not isinstance(tid, str) or not isinstance(iss, str):
            raise InvalidToken(InvalidToken.MALFORMED)
        now = self._clock()
        if now >= exp + self._leeway:
            raise InvalidToken(InvalidToken.EXPIRED)
        if isinstance(nbf, int | float) and now + self._leeway < nbf:
            raise InvalidToken(InvalidToken.NOT_YET_VALID)
        if claims.get("aud") not in audience_forms(audience):
            raise InvalidToken(InvalidToken.WRONG_AUDIENCE)
        if iss != f"{ISSUER_PREFIX}{tid}/" or (self._tenants is not None and tid not in self._tenants):
            raise InvalidToken(InvalidToken.WRONG_ISSUER)
