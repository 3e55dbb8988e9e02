"""Envelopes compared with Microsoft's documented examples (shape and property names, not values).

The fixtures are the response bodies printed in the Microsoft Graph v1.0 docs
(github.com/microsoftgraph/microsoft-graph-docs-contrib), cited per fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.devstack.test_graph_support import GraphHarness, running_harness

pytestmark = pytest.mark.timeout(240)

# api-reference/v1.0/api/user-delta.md, Example 1 response (default properties).
USER_DELTA: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
    "@odata.nextLink": "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=pqwSUjGYvb3jQpbwVAwEL7yuI3dU1LecfkkfLPtnIjsXoYQp_dpA3cNJWc",
    "value": [{
        "businessPhones": ["businessPhones-value"], "displayName": "displayName-value", "givenName": "givenName-value",
        "jobTitle": "jobTitle-value", "mail": "mail-value", "mobilePhone": "mobilePhone-value",
        "officeLocation": "officeLocation-value", "preferredLanguage": "preferredLanguage-value",
        "surname": "surname-value", "userPrincipalName": "userPrincipalName-value", "id": "id-value",
    }],
}

# api-reference/v1.0/api/group-delta.md, Response 1 (members@delta present by default; truncated in the docs).
GROUP_DELTA: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups",
    "@odata.nextLink": "https://graph.microsoft.com/v1.0/groups/delta?$skiptoken=pqwSUjGYvb3jQpbwVAwEL7yuI3dU1LecfkkfLPtnIjvY1FSSc_",
    "value": [{
        "createdDateTime": "2021-03-12T10:36:14Z",
        "description": "This is the default group for everyone in the network",
        "displayName": "All Company", "groupTypes": ["Unified"], "mail": "allcompany@contoso.com",
        "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "693acd06-2877-4339-8ade-b704261fe7a0"},
                          {"@odata.type": "#microsoft.graph.user", "id": "49320844-be99-4164-8167-87ff5d047ace"}],
    }],
}

# api-reference/v1.0/api/user-list-messages.md, Example 1 ($select=sender,subject).
MESSAGES_SELECT: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('bb8775a4-4d8c-42cf-a1d4-4d58c2bb668f')/messages(sender,subject)",
    "value": [{
        "@odata.etag": "W/\"CQAAABYAAADHcgC8Hl9tRZ/hc1wEUs1TAAAwR4Hg\"", "id": "AAMkAGUAAAwTW09AAA=",
        "subject": "You have late tasks!",
        "sender": {"emailAddress": {"name": "Microsoft Planner", "address": "noreply@Planner.Office365.com"}},
    }],
}

# concepts/json-batching.md, "Example JSON batch response", items 3 and 5.
BATCH_RESPONSE: dict[str, Any] = {
    "responses": [
        {"id": "3", "status": 403,
         "headers": {"Cache-Control": "no-cache", "x-ms-resource-unit": "1", "Content-Type": "application/json"},
         "body": {"error": {"code": "Authorization_RequestDenied",
                            "message": "Insufficient privileges to complete the operation.",
                            "innerError": {"date": "2025-02-13T10:17:06",
                                           "request-id": "93b6f17e-c05d-4f45-ad2a-6665c708d8a0",
                                           "client-request-id": "e70c5c1b-8b47-68c0-3171-3d22f5e0bd54"}}}},
        {"id": "5", "status": 200,
         "headers": {"Cache-Control": "no-cache", "x-ms-resource-unit": "1", "OData-Version": "4.0",
                     "Content-Type": "application/json;odata.metadata=minimal;odata.streaming=true;"
                                     "IEEE754Compatible=false;charset=utf-8"},
         "body": {"@odata.context": "https://graph.microsoft.com/beta/$metadata#users(id,displayName,userPrincipalName)",
                  "@odata.count": 36,
                  "value": [{"id": "10a1d484-cd1a-4162-a5a4-832370bac356", "displayName": "Lynne Robbins",
                             "userPrincipalName": "LynneR@contoso.com"}]}},
    ],
}

# concepts/throttling.md (ms.date 11/11/2022), "Sample response".
THROTTLED: dict[str, Any] = {"error": {"code": "TooManyRequests", "innerError": {
    "code": "429", "date": "2020-08-18T12:51:51", "message": "Please retry after",
    "request-id": "94fb3b52-452a-4535-a601-69e0a90e3aa2", "status": "429"}, "message": "Please retry again later."}}


@pytest.fixture(scope="module")
async def graph(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphHarness]:
    async with running_harness(Path(tmp_path_factory.mktemp("graph-envelopes"))) as harness:
        yield harness


def same_shape(doc: Any, ours: Any, where: str = "$") -> None:
    """Every key the documented example shows exists in ours with a value of the same JSON type."""
    if isinstance(doc, dict):
        assert isinstance(ours, dict), f"{where}: expected an object"
        for key, value in doc.items():
            assert key in ours, f"{where}: missing {key!r} (has {sorted(ours)})"
            same_shape(value, ours[key], f"{where}.{key}")
    elif isinstance(doc, list):
        assert isinstance(ours, list), f"{where}: expected an array"
        if doc and ours:
            same_shape(doc[0], ours[0], f"{where}[0]")
    elif doc is not None and ours is not None:
        assert isinstance(ours, type(doc)) or (isinstance(doc, float | int) and isinstance(ours, float | int)), (
            f"{where}: {type(ours).__name__} vs documented {type(doc).__name__}")


def same_link_form(doc: str, ours: str) -> None:
    d, o = urlsplit(doc), urlsplit(ours)
    assert d.path == o.path
    assert [p.split("=")[0] for p in d.query.split("&")] == [p.split("=")[0] for p in o.query.split("&")]


async def test_user_delta_matches_docs(graph: GraphHarness) -> None:
    body = (await graph.get("/users/delta")).json
    same_shape(USER_DELTA, body)
    assert set(body["value"][0]) == set(USER_DELTA["value"][0])  # exactly the documented default set
    same_link_form(USER_DELTA["@odata.nextLink"], body["@odata.nextLink"])
    assert body["@odata.context"].split("$metadata")[1] == "#users"
    assert list(body) == list(USER_DELTA)


async def test_group_delta_matches_docs(graph: GraphHarness) -> None:
    await graph.admin("PATCH", "/settings", {"directory_delta_page_size": 5})
    try:
        body = (await graph.get("/groups/delta")).json
    finally:
        await graph.admin("PATCH", "/settings", {"directory_delta_page_size": 100})
    with_members = next(g for g in body["value"] if g["members@delta"])
    same_shape(GROUP_DELTA, {**body, "value": [with_members]})
    same_link_form(GROUP_DELTA["@odata.nextLink"], body["@odata.nextLink"])


async def test_message_list_matches_docs(graph: GraphHarness) -> None:
    user = next(u for u in graph.ids("users") if graph.tenant.mailbox_state(u) == "ok"
                and graph.tenant.collection("messages", u).count() > 10)  # type: ignore[union-attr]
    body = (await graph.get(f"/users/{user}/messages?$select=sender,subject")).json
    same_shape(MESSAGES_SELECT, body)
    assert set(body["value"][0]) == set(MESSAGES_SELECT["value"][0])
    assert body["@odata.context"].split("$metadata")[1] == f"#users('{user}')/messages(sender,subject)"
    # The Outlook nextLink is percent-encoded, e.g. ...messages?%24select=sender%2Csubject&%24skip=10
    assert urlsplit(body["@odata.nextLink"]).query == "%24select=sender%2Csubject&%24skip=10"


async def test_batch_response_matches_docs(graph: GraphHarness) -> None:
    reply = await graph.request("POST", "/$batch", roles=["User.Read.All"], body={"requests": [
        {"id": "3", "method": "GET", "url": "/groups"},
        {"id": "5", "method": "GET", "url": "/users?$select=id,displayName,userPrincipalName&$count=true",
         "headers": {"ConsistencyLevel": "eventual"}},
    ]})
    assert reply.status == 200
    ours = {r["id"]: r for r in reply.json["responses"]}
    for doc in BATCH_RESPONSE["responses"]:
        mine = ours[doc["id"]]
        same_shape(doc, mine)
        assert mine["status"] == doc["status"]
        assert set(mine["headers"]) == set(doc["headers"])
    assert ours["3"]["body"]["error"]["code"] == "Authorization_RequestDenied"


async def test_throttled_response_matches_docs(graph: GraphHarness) -> None:
    await graph.admin("PATCH", "/settings", {"throttle": {"enabled": True}})
    statuses = []
    for _ in range(7):
        reply = await graph.get("/auditLogs/directoryAudits?$top=1")
        statuses.append(reply.status)
    assert statuses.count(429) == 2
    same_shape(THROTTLED, reply.json)
    assert reply.json["error"]["innerError"]["code"] == "429"
    assert int(reply.headers["Retry-After"]) >= 1
