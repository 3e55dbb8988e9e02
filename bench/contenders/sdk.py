"""The official msgraph-sdk, used the way its docs show: list users with a PageIterator, then each user's
messages with a PageIterator, one user after another. The SDK's default middleware retries 429/503/504 on
Retry-After (three retries). Records are serialised with Kiota's JSON writer to JSON lines.

    python -m bench.contenders.sdk CONFIG.json
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]
from msgraph_core.tasks.page_iterator import PageIterator  # type: ignore[import-untyped]

from bench.contenders.common import ContenderConfig, ContenderResult


def to_json(model: Any) -> bytes:
    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    content: bytes = writer.get_serialized_content()
    return content


class _Counting(httpx.AsyncBaseTransport):
    """Counts what reaches the wire (after the SDK's retry middleware), for the race's requests column."""

    def __init__(self, inner: httpx.AsyncBaseTransport, result: ContenderResult) -> None:
        self.inner = inner
        self.result = result

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "/v1.0/" in request.url.path:
            self.result.requests += 1
            if response.status_code == 429:
                self.result.throttled += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def sync(config: ContenderConfig, result: ContenderResult) -> None:
    credential = ClientSecretCredential(config.tenant_id, config.client_id, config.client_secret,
                                        authority=config.authority_host, disable_instance_discovery=True,
                                        connection_verify=config.ca_bundle)
    context = ssl.create_default_context(cafile=config.ca_bundle)
    transport = _Counting(httpx.AsyncHTTPTransport(verify=context), result)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=transport, trust_env=False, timeout=300))
    host = httpx.URL(config.graph_url).host
    auth = AzureIdentityAuthenticationProvider(credential, scopes=["https://graph.microsoft.com/.default"],
                                               allowed_hosts=[host])
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{config.graph_url}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    out = Path(config.out_dir)
    try:
        with (out / "users.jsonl").open("wb") as users_out, (out / "mail_messages.jsonl").open("wb") as mail_out:
            user_ids: list[str] = []

            def keep_user(user: Any) -> bool:
                users_out.write(to_json(user) + b"\n")
                user_ids.append(user.id)
                return True

            query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                top=config.page_size, select=list(config.user_select) or None)
            first = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
            await PageIterator(first, adapter).iterate(keep_user)
            result.users = len(user_ids)

            def keep_message(message: Any) -> bool:
                mail_out.write(to_json(message) + b"\n")
                result.records += 1
                return True

            for user_id in user_ids:
                mquery = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
                    top=config.page_size, select=list(config.message_select) or None)
                try:
                    page = await client.users.by_user_id(user_id).messages.get(
                        request_configuration=RequestConfiguration(query_parameters=mquery))
                except APIError as exc:
                    if exc.response_status_code in (403, 404):  # no mailbox: skip the user
                        continue
                    raise
                await PageIterator(page, adapter).iterate(keep_message)
    finally:
        await credential.close()


def main() -> None:
    config = ContenderConfig.load(Path(sys.argv[1]))
    result = ContenderResult("msgraph-sdk script")
    Path(config.out_dir).mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        asyncio.run(sync(config, result))
    except Exception as exc:  # reported in the race table, not a traceback
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    result.finish(started, cpu_started).emit()


if __name__ == "__main__":
    main()
