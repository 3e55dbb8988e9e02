"""Engine fixtures on the real local stack: settings pointing at the emulators, the workload identity exported
the way the local runner exports it, and engines closed after every test (no sockets left behind)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient

from localrun.settings import applied
from shared.config import Settings, load_settings
from shared.runtime import close_engines
from tests.conftest import RunningStack


def engine_environ(stack: RunningStack, **overrides: str) -> dict[str, str]:
    env = stack.env
    values = {
        "GRAPH_TENANT_IDS": env.tenant_id,
        "GRAPH_CLIENT_ID": env.graph_app.client_id,
        "KEY_VAULT_URL": env.key_vault_url,
        "GRAPH_CLIENT_SECRET_NAME": env.graph_app.client_secret_name,
        "GRAPH_CERTIFICATE_SECRET_NAME": env.graph_app.certificate_secret_name,
        "AZURE_CLIENT_ID": env.workload_identity.client_id,
        "GRAPH_AUTHORITY_HOST": env.authority_host,
        "CA_BUNDLE": env.ca_bundle,
        "OUTPUT_ACCOUNT_URL": env.blob_account_url,
        "OUTPUT_CONTAINER": "engine-tests",
        "OUTPUT_PREFIX": unique("t"),  # each test its own lake folder: no state leaks from one test to the next
        "OUTPUT_FORMAT": "jsonl.gz",
    }
    if env.graph_url:
        values["GRAPH_ENDPOINT"] = env.graph_url
    values.update(overrides)
    return values


@pytest.fixture()
def workload_env(stack: RunningStack) -> Iterator[None]:
    """Export the workload identity exactly like the local runner does (EnvironmentCredential reads it)."""
    with applied(stack.env.workload_environment()):
        yield


@pytest.fixture()
async def engine_settings(stack: RunningStack, workload_env: None) -> AsyncIterator[Settings]:
    yield load_settings(engine_environ(stack))
    await close_engines()


@pytest.fixture(scope="session")
def vault_writer(stack: RunningStack) -> dict[str, Any]:
    """An app allowed to write vault secrets (tests play the admin who rotates credentials)."""
    app = stack.admin.register_app(roles=[], secret=True, display_name="vault admin")
    stack.admin.keyvault("POST", "/roles", {"client_id": app["client_id"], "role": "Key Vault Secrets Officer"},
                         expect=201)
    return app


async def set_vault_secret(stack: RunningStack, writer: dict[str, Any], name: str, value: str,
                           content_type: str | None = None) -> None:
    credential = ClientSecretCredential(stack.env.tenant_id, writer["client_id"], writer["secret"]["value"],
                                        authority=stack.env.authority_host, disable_instance_discovery=True,
                                        connection_verify=stack.env.ca_bundle)
    client = SecretClient(stack.env.key_vault_url, credential, verify_challenge_resource=False,
                          connection_verify=stack.env.ca_bundle)
    try:
        await client.set_secret(name, value, content_type=content_type)
    finally:
        await client.close()
        await credential.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
