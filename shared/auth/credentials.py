"""The workload identity used for Key Vault, Blob and (with managed_identity) Graph.

`DefaultAzureCredential` picks the user-assigned managed identity in Azure (AZURE_CLIENT_ID) and the
EnvironmentCredential locally, so product code is the same in both places; only the CA bundle and the
authority's instance discovery differ.
"""

from __future__ import annotations

from typing import Any

from azure.identity.aio import DefaultAzureCredential

from shared.config import Settings


def transport_kwargs(settings: Settings) -> dict[str, Any]:
    """azure-core transport options: a custom CA wins over REQUESTS_CA_BUNDLE/SSL_CERT_FILE only when passed here."""
    return {"connection_verify": settings.ca_bundle} if settings.ca_bundle else {}


def workload_credential(settings: Settings) -> DefaultAzureCredential:
    kwargs: dict[str, Any] = dict(transport_kwargs(settings))
    if settings.azure_client_id:
        kwargs["managed_identity_client_id"] = settings.azure_client_id
    if settings.authority_host_override:
        # A private authority has no entry in the public instance-discovery metadata.
        kwargs["disable_instance_discovery"] = True
    return DefaultAzureCredential(
        exclude_interactive_browser_credential=True,
        exclude_visual_studio_code_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_cli_credential=True,
        exclude_powershell_credential=True,
        exclude_developer_cli_credential=True,
        **kwargs,
    )
