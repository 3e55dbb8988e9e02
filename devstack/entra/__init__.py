"""Entra ID emulator: OIDC discovery, jwks and the client-credentials token endpoint for registered apps."""

from devstack.entra.app import create_entra_app

__all__ = ["create_entra_app"]
