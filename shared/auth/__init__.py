"""Credentials: Key Vault secrets (TTL cache) and Graph tokens (MSAL or managed identity)."""

from shared.auth.certs import CertificateFormatError, ClientCertificate, parse_certificate
from shared.auth.credentials import transport_kwargs, workload_credential
from shared.auth.secrets import Secret, SecretCache, SecretReadError
from shared.auth.tokens import (
    AccessToken,
    GraphAuthError,
    IdentityTokenProvider,
    MsalTokenProvider,
    TokenProvider,
    token_roles,
)

__all__ = [
    "AccessToken", "CertificateFormatError", "ClientCertificate", "GraphAuthError", "IdentityTokenProvider",
    "MsalTokenProvider", "Secret", "SecretCache", "SecretReadError", "TokenProvider", "parse_certificate",
    "token_roles", "transport_kwargs", "workload_credential",
]
