"""JSON batching (`POST /v1.0/$batch`): validation as Graph does it, items through the normal pipeline.

The envelope's token is checked once (`outer.auth`, when the caller set it) and items that carry it reuse that
outcome, as Graph authenticates the envelope; items are permission-checked and throttled on their own (an inner
429 carries its own Retry-After); `dependsOn` orders items and turns dependents of a failed item into 424;
responses come back in a shuffled (seeded, so reproducible) order; at most four items run at once against one
mailbox, as Graph sends them to Exchange.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

from multidict import CIMultiDict

from devstack.graph import endpoints
from devstack.graph.errors import GraphError, error_body
from devstack.graph.messages import GraphRequest, GraphResponse, error_response, graph_date
from devstack.graph.query import parse_query_string

MAX_REQUESTS = 20
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
_INNER_HEADERS = ("Retry-After", "x-ms-resource-unit", "x-ms-throttle-scope", "x-ms-throttle-information", "Location",
                  "WWW-Authenticate", "Preference-Applied")

ItemHandler = Callable[[GraphRequest], Awaitable[GraphResponse]]


def _invalid(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def validate(body: Any) -> list[dict[str, Any]]:
    """The batch's requests, or a GraphError for what Graph rejects before running anything."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _invalid("Invalid batch payload format.")
    items: list[dict[str, Any]] = body["requests"]
    if not items:
        raise _invalid("Invalid batch payload format.")
    if len(items) > MAX_REQUESTS:
        raise _invalid(f"Number of batch request steps exceeds the maximum of {MAX_REQUESTS}.")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            raise _invalid("Invalid batch payload format.")
        item_id, method, url = item.get("id"), item.get("method"), item.get("url")
        if not isinstance(item_id, str) or not item_id:
            raise _invalid("Invalid batch payload format: every request needs a string 'id'.")
        if item_id.lower() in seen:
            raise _invalid(f"Batch request contains duplicate request id '{item_id}' (ids are case-insensitive).")
        seen.add(item_id.lower())
        if not isinstance(method, str) or not isinstance(url, str) or not url:
            raise _invalid(f"Invalid batch payload format: request '{item_id}' needs 'method' and 'url'.")
        if "://" in url:
            raise _invalid(f"Request '{item_id}': the url must be relative to the version root, e.g. '/users'.")
        if url.lstrip("/").lower().startswith("$batch"):
            raise _invalid("Nested batch requests are not supported.")
        if "body" in item and not any(k.lower() == "content-type" for k in (item.get("headers") or {})):
            raise _invalid(f"Request '{item_id}': a Content-Type header is required when a body is present.")
        headers = item.get("headers")
        if headers is not None and not isinstance(headers, dict):
            raise _invalid(f"Request '{item_id}': 'headers' must be an object.")
    ids = {str(i["id"]).lower() for i in items}
    for item in items:
        depends = item.get("dependsOn") or []
        if not isinstance(depends, list) or any(not isinstance(d, str) or d.lower() not in ids for d in depends):
            raise _invalid(f"Request '{item['id']}': dependsOn must list ids of requests in the same batch.")
    return items


def _mailbox(path: str, mailbox_key: Callable[[str], str]) -> str | None:
    try:
        ep, keys, _ = endpoints.route(path)
    except endpoints.RouteError:
        return None
    return mailbox_key(keys[0]) if ep.family == "outlook" and keys else None


def _lower(key: str) -> str:
    return key.lower()


async def run(outer: GraphRequest, items: list[dict[str, Any]], handle: ItemHandler, seed: int,
              mailbox_key: Callable[[str], str] = _lower) -> GraphResponse:
    """`mailbox_key` maps the user segment of an Outlook URL (id or userPrincipalName) to one key per mailbox."""
    results: dict[str, GraphResponse] = {}
    done: dict[str, asyncio.Event] = {str(i["id"]).lower(): asyncio.Event() for i in items}
    mailbox_gates: dict[str, asyncio.Semaphore] = {}

    async def one(item: dict[str, Any]) -> None:
        key = str(item["id"]).lower()
        try:
            depends = [d.lower() for d in item.get("dependsOn") or []]
            for dep in depends:
                await done[dep].wait()
            failed = [d for d in depends if results[d].status >= 400]
            if failed:
                err = GraphError(424, "FailedDependency", "Failed Dependency")
                results[key] = GraphResponse(424, err.body(request_id=outer.request_id,
                                                           client_request_id=outer.client_request_id,
                                                           date=graph_date()))
                return
            url = "/" + str(item["url"]).lstrip("/")
            path, _, qs = url.partition("?")
            headers: CIMultiDict[str] = CIMultiDict({k: str(v) for k, v in (item.get("headers") or {}).items()})
            envelope_token = "Authorization" in outer.headers and "Authorization" not in headers
            for name in ("Authorization", "client-request-id"):
                if name in outer.headers and name not in headers:
                    headers[name] = outer.headers[name]
            inner = GraphRequest(str(item["method"]).upper(), path, parse_query_string(qs), headers, outer.base_url,
                                 body=item.get("body"), auth=outer.auth if envelope_token else None)
            mailbox = _mailbox(path, mailbox_key)
            if mailbox is not None:
                gate = mailbox_gates.setdefault(mailbox, asyncio.Semaphore(4))
                async with gate:
                    results[key] = await handle(inner)
            else:
                results[key] = await handle(inner)
        except GraphError as err:
            results[key] = error_response(outer, err)
        finally:
            done[key].set()

    await asyncio.gather(*(one(i) for i in items))
    responses = []
    for item in items:
        res = results[str(item["id"]).lower()]
        # Inner headers as json-batching.md shows them: OData headers on success, plain JSON on errors.
        headers = {"Cache-Control": "no-cache"}
        headers.update({k: v for k, v in res.headers.items() if k in _INNER_HEADERS})
        if res.body is not None and res.status < 400:
            headers["OData-Version"] = "4.0"
            headers["Content-Type"] = ODATA_JSON
        elif res.body is not None:
            headers["Content-Type"] = "application/json"
        entry: dict[str, Any] = {"id": item["id"], "status": res.status, "headers": headers}
        if res.body is not None:
            entry["body"] = res.body
        responses.append(entry)
    digest = hashlib.sha256(f"{seed}|{'|'.join(str(i['id']) for i in items)}".encode()).digest()
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(responses)
    return GraphResponse(200, {"responses": responses}, endpoint="$batch")


def envelope_error(outer: GraphRequest, err: GraphError) -> GraphResponse:
    return GraphResponse(err.status, error_body(err.code, err.message, request_id=outer.request_id,
                                                client_request_id=outer.client_request_id, date=graph_date()),
                         endpoint="$batch")
