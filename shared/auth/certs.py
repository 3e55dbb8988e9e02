"""Turn the certificate secret (PEM, or the base64 PFX a Key Vault certificate exposes) into MSAL's credential.

The thumbprint is computed from the certificate itself, so rotating the certificate in Key Vault needs no setting
change.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12


class CertificateFormatError(ValueError):
    """The secret is neither PEM nor PFX; the message never quotes the secret."""


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    private_key_pem: str = field(repr=False)
    certificate_pem: str
    thumbprint: str
    """Upper-case SHA-1 hex, what Entra shows and MSAL's `thumbprint` expects."""

    def msal_credential(self) -> dict[str, str]:
        return {"private_key": self.private_key_pem, "thumbprint": self.thumbprint,
                "public_certificate": self.certificate_pem}


def _thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - certificate thumbprints are SHA-1


def _from_parts(key: object, cert: x509.Certificate | None) -> ClientCertificate:
    if cert is None or key is None:
        raise CertificateFormatError("the certificate secret must hold both the private key and the certificate")
    key_pem = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return ClientCertificate(key_pem, cert_pem, _thumbprint(cert))


def parse_certificate(value: str, password: bytes | None = None) -> ClientCertificate:
    """PEM with key + certificate (either order), or base64 PKCS#12 (Key Vault's application/x-pkcs12)."""
    if "-----BEGIN" in value:
        data = value.encode("ascii", errors="ignore")
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError):
            raise CertificateFormatError("the PEM certificate secret holds no readable private key") from None
        try:
            cert = x509.load_pem_x509_certificates(data)[0]
        except (ValueError, IndexError):
            raise CertificateFormatError("the PEM certificate secret holds no certificate") from None
        return _from_parts(key, cert)
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
        pfx_key, pfx_cert, _ = pkcs12.load_key_and_certificates(raw, password)
    except (binascii.Error, ValueError, TypeError):
        raise CertificateFormatError("the certificate secret is neither PEM nor base64 PFX (PKCS#12)") from None
    return _from_parts(pfx_key, pfx_cert)
