"""The Durable extension's HTTP API over the local runtime, so starters run with a real DurableOrchestrationClient.

In Azure the Python worker's client binding points `rpcBaseUrl` at the Functions host on loopback
(`http://127.0.0.1:<port>/durabletask/`); this serves the subset the starters use on the same shape: start an
orchestration, read an instance's status, terminate, raise an event, plus the public status URL the 202 response
advertises. Status codes follow what the SDK client expects (200 completed, 202 running, 400 terminated,
404 unknown, 500 failed). A start over a running instance is refused like host.json
`overridableExistingInstanceStates: NonRunningStates` makes the extension do (the exact status the extension
answers with is not verified here; the client raises for anything but 2xx/400, which is all the starter needs).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from localrun.registry import UnknownFunctionError
from localrun.runtime import DurableRuntime, InstanceExistsError

TASK_HUB = "m365lake"
_STATUS_CODES = {"Completed": 200, "Running": 202, "Pending": 202, "ContinuedAsNew": 202, "Terminated": 400,
                 "Canceled": 400, "Failed": 500}
_RUNTIME = web.AppKey("runtime", DurableRuntime)


def create_app(runtime: DurableRuntime) -> web.Application:
    app = web.Application()
    app[_RUNTIME] = runtime
    app.router.add_post("/durabletask/orchestrators/{name}", _start)
    app.router.add_post("/durabletask/orchestrators/{name}/{instance_id}", _start)
    app.router.add_get("/durabletask/instances/{instance_id}", _status)
    app.router.add_post("/durabletask/instances/{instance_id}/terminate", _terminate)
    app.router.add_post("/durabletask/instances/{instance_id}/raiseEvent/{event}", _raise_event)
    app.router.add_get("/runtime/webhooks/durabletask/instances/{instance_id}", _status)
    return app


def client_binding(base_url: str) -> str:
    """The `durableClient` binding JSON the host hands the worker, for a host listening at `base_url`."""
    base = base_url.rstrip("/")
    webhook = f"{base}/runtime/webhooks/durabletask"
    query = f"taskHub={TASK_HUB}&connection=Storage&code=local"
    instance = f"{webhook}/instances/INSTANCEID"
    return json.dumps({
        "taskHubName": TASK_HUB,
        "creationUrls": {
            "createNewInstancePostUri": f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]?code=local",
            "createAndWaitOnNewInstancePostUri": f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]"
                                                 f"?timeout={{timeoutInSeconds}}&pollingInterval="
                                                 f"{{intervalInSeconds}}&code=local",
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{instance}?{query}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{instance}?{query}",
            "restartPostUri": f"{instance}/restart?{query}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
        },
        "baseUrl": webhook,
        "requiredQueryStringParameters": "code=local",
        "rpcBaseUrl": f"{base}/durabletask/",
    })


async def _start(request: web.Request) -> web.Response:
    runtime = request.app[_RUNTIME]
    name = request.match_info["name"]
    input_json = _input_json(await request.read())
    try:
        instance_id = await runtime.start_new(name, request.match_info.get("instance_id"), input_json)
    except UnknownFunctionError as exc:
        return web.json_response({"Message": "One or more of the arguments submitted is incorrect",
                                  "ExceptionMessage": str(exc)}, status=400)
    except InstanceExistsError as exc:
        return web.json_response({"Message": str(exc), "ExceptionMessage": str(exc)}, status=409)
    return web.json_response({"id": instance_id}, status=202)


def _input_json(body: bytes) -> str | None:
    """The client sends `json=df_dumps(input)`: a JSON string whose content is the input's JSON."""
    if not body.strip():
        return None
    decoded: Any = json.loads(body)
    if decoded is None:
        return None
    return decoded if isinstance(decoded, str) else json.dumps(decoded)


async def _status(request: web.Request) -> web.Response:
    runtime = request.app[_RUNTIME]
    instance = runtime.get(request.match_info["instance_id"])
    if instance is None:
        return web.Response(status=404)
    flag = request.query.get
    body = instance.status_json(show_input=flag("showInput", "").lower() == "true",
                                show_history=flag("showHistory", "").lower() == "true")
    return web.json_response(body, status=_STATUS_CODES.get(instance.status, 202))


async def _terminate(request: web.Request) -> web.Response:
    runtime = request.app[_RUNTIME]
    instance_id = request.match_info["instance_id"]
    if runtime.get(instance_id) is None:
        return web.Response(status=404)
    await runtime.terminate(instance_id, request.query.get("reason", ""))
    return web.Response(status=202)


async def _raise_event(request: web.Request) -> web.Response:
    runtime = request.app[_RUNTIME]
    instance_id = request.match_info["instance_id"]
    if runtime.get(instance_id) is None:
        return web.Response(status=404)
    body = await request.read()
    await runtime.raise_event(instance_id, request.match_info["event"], json.loads(body) if body else None)
    return web.Response(status=202)


class LocalHost:
    """Serves the API on an ephemeral loopback port for the life of an `async with` block."""

    def __init__(self, runtime: DurableRuntime) -> None:
        self.runtime = runtime
        self._runner = web.AppRunner(create_app(runtime), access_log=None)
        self.base_url = ""

    async def __aenter__(self) -> LocalHost:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    @property
    def client_binding(self) -> str:
        return client_binding(self.base_url)
