"""Key Vault emulator: the secrets REST API, bearer challenge, token validation and RBAC."""

from devstack.keyvault.app import VaultSettings, create_keyvault_app
from devstack.keyvault.store import VaultState

__all__ = ["VaultSettings", "VaultState", "create_keyvault_app"]
