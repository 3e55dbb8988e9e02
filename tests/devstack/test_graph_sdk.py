"""The official msgraph-sdk, unchanged, against the emulator inside the real local stack: azure-identity's
ClientSecretCredential gets a token from the Entra emulator; the SDK pages through users with its PageIterator
and completes a users delta round (nextLink pages, then a deltaLink), and every user parses with no unknown
properties."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]
from msgraph_core.tasks.page_iterator import PageIterator  # type: ignore[import-untyped]

from tests.conftest import RunningStack

pytestmark = pytest.mark.timeout(240)


def unknown(model: Any) -> set[str]:
    """Properties Kiota could not map onto the model (annotations aside): must be none."""
    return {k for k in (model.additional_data or {}) if not k.startswith("@odata.")}


@contextlib.asynccontextmanager
async def _sdk_client(stack: RunningStack, roles: list[str]
                      ) -> AsyncIterator[tuple[GraphServiceClient, GraphRequestAdapter, ClientSecretCredential]]:
    """The unmodified SDK client against the emulator: an app of its own with `roles`, the stack's CA trusted."""
    env = stack.env
    assert env.graph_url is not None, "the stack runs without the Graph emulator"
    reg = stack.admin.register_app(roles=roles)
    credential = ClientSecretCredential(
        env.tenant_id, reg["client_id"], reg["secret"]["value"], authority=env.authority_host,
        disable_instance_discovery=True, connection_verify=env.ca_bundle,
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=env.ca_bundle), trust_env=False))
    auth = AzureIdentityAuthenticationProvider(credential, scopes=["https://graph.microsoft.com/.default"],
                                               allowed_hosts=["127.0.0.1"])
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{env.graph_url}/v1.0"
    try:
        yield GraphServiceClient(request_adapter=adapter), adapter, credential
    finally:
        await credential.close()
        await http.aclose()


async def test_sdk_pages_users_and_runs_a_delta_round(stack: RunningStack) -> None:
    env = stack.env
    async with _sdk_client(stack, ["User.Read.All"]) as (client, adapter, credential):
        # Page size 7 so the iterator has several nextLinks to follow.
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=7)
        first = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        assert first is not None and first.odata_next_link
        seen: list[str] = []

        def collect(user: Any) -> bool:
            assert unknown(user) == set(), unknown(user)
            seen.append(user.id)
            return True

        await PageIterator(first, adapter).iterate(collect)
        with stack.http() as session:
            token = (await credential.get_token("https://graph.microsoft.com/.default")).token
            raw = session.get(f"{env.graph_url}/v1.0/users?$count=true&$top=1&$select=id",
                              headers={"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"}).json()
        assert len(seen) == len(set(seen)) == raw["@odata.count"]

        # Delta: follow nextLinks with the SDK's own with_url until the deltaLink (small pages: several links).
        stack.admin.graph("PATCH", "/settings", {"directory_delta_page_size": 8})
        try:
            page = await client.users.delta.get()
        finally:
            stack.admin.graph("PATCH", "/settings", {"directory_delta_page_size": 100})
        delta_users: list[Any] = []
        pages = 1
        while True:
            assert page is not None
            delta_users.extend(page.value or [])
            if page.odata_next_link:
                assert not page.odata_delta_link
                page = await client.users.delta.with_url(page.odata_next_link).get()
                pages += 1
                continue
            break
        assert page.odata_delta_link and "$deltatoken=" in page.odata_delta_link
        assert pages == -(-len(seen) // 8)  # the page size travels inside the token
        assert sorted(u.id for u in delta_users) == sorted(seen)
        assert all(unknown(u) == set() for u in delta_users)

        target = seen[0]
        before = next(u for u in delta_users if u.id == target)
        stack.admin.graph("POST", "/tenant", {"op": "update", "kind": "users", "id": target,
                                              "patch": {"jobTitle": "Delta via SDK"}})
        try:
            changes = await client.users.delta.with_url(page.odata_delta_link).get()
            assert changes is not None and changes.odata_delta_link
            changed = {u.id: u for u in changes.value or []}
            assert changed[target].job_title == "Delta via SDK"
        finally:
            stack.admin.graph("POST", "/tenant", {"op": "update", "kind": "users", "id": target,
                                                  "patch": {"jobTitle": before.job_title}})


async def test_sdk_reads_the_folder_hierarchy_by_delta_and_child_folders(stack: RunningStack) -> None:
    """The SDK's mailFolders delta builder: nested folders (the demo tenant has some) parse as MailFolder models with
    no unknown properties, and its childFolders builder walks one level down."""
    async with _sdk_client(stack, ["User.Read.All", "Mail.Read"]) as (client, _, _):
        users = await client.users.get()
        assert users is not None and users.value
        found: dict[str, list[Any]] = {}
        for user in users.value:
            assert user.id is not None
            config = RequestConfiguration()  # type: ignore[var-annotated]
            config.headers.add("Prefer", "odata.maxpagesize=5")
            try:
                page = await client.users.by_user_id(user.id).mail_folders.delta.get(request_configuration=config)
            except ODataError as err:  # no mailbox (404) or outside the access policy (403)
                assert err.response_status_code in (403, 404)
                continue
            folders: list[Any] = []
            while page is not None:
                folders.extend(page.value or [])
                if not page.odata_next_link:
                    assert page.odata_delta_link
                    break
                page = await client.users.by_user_id(user.id).mail_folders.delta.with_url(
                    page.odata_next_link).get()
            if len(folders) > 9:
                found[user.id] = folders
        assert found, "the demo tenant should have mailboxes with child folders"
        user_id, folders = next(iter(found.items()))
        assert all(unknown(f) == set() for f in folders)
        ids = {f.id for f in folders}
        nested = [f for f in folders if f.parent_folder_id in ids]
        assert nested and all(isinstance(f.child_folder_count, int) for f in folders)
        parent = next(f for f in folders if f.id == nested[0].parent_folder_id)
        kids = await client.users.by_user_id(user_id).mail_folders.by_mail_folder_id(parent.id).child_folders.get()
        assert kids is not None and {k.id for k in kids.value or []} == {
            f.id for f in folders if f.parent_folder_id == parent.id}
        assert parent.child_folder_count == len(kids.value or [])
