"""The stack's private certificate authority: one CA per stack, one server certificate for every HTTPS service.

Product code trusts it only through an explicit CA bundle path (`CA_BUNDLE`), never through the system store,
so the same code talks to Azure with the public roots and to the local stack with this CA.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_IDENTITIES = ("127.0.0.1", "localhost")


@dataclass(frozen=True, slots=True)
class CertFiles:
    """PEM files on disk: what Azurite (`--cert/--key`), clients (`ca_bundle`) and ssl contexts consume."""

    ca_bundle: Path
    server_cert: Path
    server_key: Path

    def server_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext:
        """Trusts only the stack's CA (ignores SSL_CERT_FILE and the system store on purpose)."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_bundle))
        return ctx


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(path)


def load_or_create(directory: Path) -> CertFiles:
    """Reuse the CA and server certificate found in `directory`, else make new ones.

    Reuse matters with a persistent state dir: clients configured with the old bundle keep working after a restart.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca_key = directory / "ca-key.pem"
    if all(p.exists() for p in (files.ca_bundle, files.server_cert, files.server_key, ca_key)):
        return files
    if files.ca_bundle.exists() and ca_key.exists():
        ca = trustme.CA.from_pem(files.ca_bundle.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="m365-lake devstack")
        _write_private(ca_key, ca.private_key_pem.bytes())
        _write_private(files.ca_bundle, ca.cert_pem.bytes())
    leaf = ca.issue_cert(*SERVER_IDENTITIES, common_name="127.0.0.1")
    # The chain includes the leaf then the CA, as servers normally present it.
    _write_private(files.server_cert, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    _write_private(files.server_key, leaf.private_key_pem.bytes())
    return files
