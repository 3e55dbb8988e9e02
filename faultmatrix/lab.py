"""The lab: one local stack, its admin APIs, an independent reader of the emulator, the credentials to scan for,
and the executor that runs one scenario as a full orchestrated run.

A run goes the way it goes in Azure: `POST /api/syncs` (the real HTTP function, with a real
DurableOrchestrationClient against the local Durable host) -> the real orchestrators replayed by the real SDK ->
the real activities (in this process, or in a worker process that can be SIGKILLed) -> Graph / Key Vault / Entra
emulators and Azurite over HTTPS. Only the endpoints and the CA bundle differ from Azure.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
import orjson
import requests
from azure.durable_functions.models.utils import http_utils
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from azure.storage.blob import BlobServiceClient

import function_app
from devstack.env import StackEnv
from devstack.process import StackProcess, start_stack
from faultmatrix.check import Expectation, Observed, Outcome, PartitionKey, Row, Verdict, evaluate
from faultmatrix.expected import READER_ROLES, GraphReader
from faultmatrix.scan import Scanner, SecretSet
from faultmatrix.worker import WorkerPool, remote_index
from localrun.host import LocalHost
from localrun.registry import FunctionIndex
from localrun.runtime import DurableRuntime, RuntimeOptions
from localrun.session import live_progress
from localrun.settings import applied, stack_app_settings
from orchestrators import progress as pg
from shared.runtime import close_engines
from shared.streams import CATALOG

APP_URL = "https://m365lake.azurewebsites.net"
STACK_ARGS = ("--users", "12", "--throttle", "0.05", "--seed", "11")


def ca_session(ca_bundle: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_bundle
    return session


class Lab:
    """A running stack plus what scenarios need to fault it and to judge a run."""

    def __init__(self, env: StackEnv, workdir: Path, process: StackProcess | None = None) -> None:
        self.env = env
        self.workdir = workdir
        self.process = process
        self.http = ca_session(env.ca_bundle)
        self._reader: GraphReader | None = None
        self._expected: dict[tuple[tuple[str, ...], int], dict[PartitionKey, frozenset[str] | None]] = {}
        self._vault_admin: dict[str, Any] | None = None
        self.secrets = SecretSet()
        self.secrets.add("workload identity client secret", env.workload_identity.client_secret)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def started(cls, workdir: Path, *args: str) -> Iterator[Lab]:
        workdir.mkdir(parents=True, exist_ok=True)
        proc = start_stack(workdir / "state", workdir / "devstack.env", *(args or STACK_ARGS))
        try:
            yield cls(proc.env, workdir, proc)
        finally:
            survivors = proc.stop()
            if survivors:
                raise RuntimeError(f"the stack left processes running: {survivors}")

    # -- admin APIs -----------------------------------------------------------------------------------------------
    def admin(self, service: str, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        base = {"entra": self.env.entra_admin_url, "keyvault": self.env.key_vault_admin_url,
                "graph": self.env.graph_admin_url}[service]
        assert base is not None
        resp = self.http.request(method, base + path, json=body, timeout=60)
        if (expect is not None and resp.status_code != expect) or (expect is None and resp.status_code >= 400):
            raise RuntimeError(f"{service} admin {method} {path}: {resp.status_code} {resp.text[:500]}")
        return resp.json() if resp.content else None

    def graph_settings(self, patch: dict[str, Any]) -> None:
        self.admin("graph", "PATCH", "/settings", patch)

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("graph", "GET", "/counters")
        return result

    def reset_faults(self) -> None:
        """Every knob a scenario may turn, back to the lab's baseline."""
        self.graph_settings({"faults": {"latency_ms": 0, "tail_rate": 0, "tail_ms": 0, "error_rate": 0,
                                        "retry_after_rate": 0.5, "drop_rate": 0, "truncate_rate": 0,
                                        "empty_page_rate": 0, "malformed_rate": 0, "path_prefix": "",
                                        "huge_page_bytes": 0, "huge_page_gzip": True},
                             "throttle": {"enabled": True, "scale": 0.05, "budget_scale": 1.0,
                                          "global_budget_scale": 1.0, "retry_after": True},
                             "public_base_url": None, "delta_token_ttl_seconds": 7 * 24 * 3600.0})
        self.admin("graph", "POST", "/throttle/reset")
        self.admin("keyvault", "PUT", "/faults", {"unavailable": False, "status": 503, "retry_after_seconds": None})
        self.admin("entra", "PUT", "/faults", {"unavailable": False, "status": 503, "retry_after_seconds": None})
        self.admin("entra", "PUT", "/settings", {"token_lifetime_seconds": 3599})
        self.admin("entra", "PATCH", f"/apps/{self.env.graph_app.client_id}", {"token_lifetime_seconds": None})

    def azurite(self, action: str) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("entra", "POST", f"/stack/azurite/{action}")
        return result

    # -- the emulator's truth -------------------------------------------------------------------------------------
    def reader(self) -> GraphReader:
        if self._reader is None:
            app = self.register_app("fault matrix reader", list(READER_ROLES))
            assert self.env.graph_url
            self._reader = GraphReader(self.env.graph_url, ca_session(self.env.ca_bundle),
                                       self.token(app["client_id"], app["secret"]["value"]))
        return self._reader

    def expected(self, streams: list[str]) -> dict[PartitionKey, frozenset[str] | None]:
        seq = int(self.admin("graph", "GET", "/health")["seq"])
        key = (tuple(sorted(streams)), seq)
        if key not in self._expected:
            self._expected[key] = self.reader().expected(streams)
        return self._expected[key]

    def register_app(self, name: str, roles: list[str]) -> dict[str, Any]:
        app: dict[str, Any] = self.admin("entra", "POST", "/apps", {"display_name": name, "home_tenant":
                                         self.env.tenant_id, "roles": roles, "secret": True}, expect=201)
        self.secrets.add(f"client secret of {name}", app["secret"]["value"])
        return app

    def token(self, client_id: str, secret: str, scope: str = "https://graph.microsoft.com/.default") -> str:
        resp = self.http.post(f"{self.env.authority_host}/{self.env.tenant_id}/oauth2/v2.0/token", timeout=30,
                              data={"client_id": client_id, "client_secret": secret, "scope": scope,
                                    "grant_type": "client_credentials"})
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    # -- Key Vault (the lab plays the admin who rotates credentials) -----------------------------------------------
    def vault(self) -> SecretClient:
        if self._vault_admin is None:
            self._vault_admin = self.register_app("fault matrix vault admin", [])
            self.admin("keyvault", "POST", "/roles", {"client_id": self._vault_admin["client_id"],
                                                      "role": "Key Vault Secrets Officer"}, expect=201)
        credential = ClientSecretCredential(self.env.tenant_id, self._vault_admin["client_id"],
                                            self._vault_admin["secret"]["value"], authority=self.env.authority_host,
                                            disable_instance_discovery=True, connection_verify=self.env.ca_bundle)
        return SecretClient(self.env.key_vault_url, credential, verify_challenge_resource=False,
                            connection_verify=self.env.ca_bundle)

    def collect_secrets(self) -> None:
        """The Graph app's live credentials from the vault (every value ever seen stays in the set)."""
        with self.vault() as client:
            for name in (self.env.graph_app.client_secret_name, self.env.graph_app.certificate_secret_name):
                value = client.get_secret(name).value
                version = client.get_secret(name).properties.version
                self.secrets.add(f"vault secret {name} ({version})", value)

    def issued_tokens(self, since: int = 0) -> tuple[int, list[str]]:
        body = self.admin("entra", "GET", f"/tokens?since={since}")
        return int(body["count"]), list(body["tokens"])

    # -- blobs (read with the storage account key: the lab is not the product) -------------------------------------
    def blob_service(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.env.storage_connection_string,
                                                        connection_verify=self.env.ca_bundle)


# --- one run ---------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class RunContext:
    """What a scenario's hooks see while its run goes on."""

    lab: Lab
    expected: dict[PartitionKey, frozenset[str] | None]
    settings: dict[str, str]
    pool: WorkerPool | None = None
    started: list[dict[str, Any]] = field(default_factory=list)  # activity starts seen in the worker
    notes: list[str] = field(default_factory=list)  # evidence the scenario really happened
    problems: list[str] = field(default_factory=list)  # evidence missing (a scenario that cannot fail is a defect)
    state: dict[str, Any] = field(default_factory=dict)


Hook = Callable[[RunContext], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class RunRecord:
    """Everything one scenario's run left behind, judged."""

    verdict: Verdict
    instance_status: str | None
    http: list[tuple[int, str]]
    seconds: float
    notes: list[str]
    summary: dict[str, Any] | None = None


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(self.format(record))


@contextlib.contextmanager
def captured_logs() -> Iterator[LogCapture]:
    """Everything the app logs at INFO and above (what the Functions host ships to Application Insights)."""
    root = logging.getLogger()
    capture = LogCapture()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


def _functions() -> dict[str, Any]:
    app = function_app.app
    app.functions_bindings = None
    found = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}
    app.functions_bindings = None
    return found


async def run_once(ctx: RunContext, body: dict[str, Any], *, worker: bool, during: Hook | None,
                   trigger: Callable[[RunContext, int], bool] | None, runtime_options: RuntimeOptions,
                   http: list[tuple[int, str]], second_start: bool = False) -> tuple[str | None, Any]:
    """Start one run through `POST /api/syncs`, fire `during` once `trigger(ctx, partitions_done)` holds, wait for
    the end. Returns (runtime status, summary)."""
    functions = _functions()
    index = FunctionIndex.from_app(function_app.app)
    if worker:
        log_path = ctx.lab.workdir / "worker.log"
        ctx.pool = WorkerPool({**os.environ, **ctx.settings, "PYTHONUNBUFFERED": "1"}, log_path,
                              on_start=ctx.started.append)
        index = remote_index(index, ctx.pool)
    runtime = DurableRuntime(index, runtime_options)
    fired = during is None
    try:
        async with LocalHost(runtime) as host:
            request = func.HttpRequest("POST", f"{APP_URL}/api/syncs", body=json.dumps(body).encode())
            answer = await functions["start_sync"](req=request, client=host.client_binding)
            http.append((answer.status_code, answer.get_body().decode("utf-8", "replace")))
            if second_start:
                again = await functions["start_sync"](req=request, client=host.client_binding)
                http.append((again.status_code, again.get_body().decode("utf-8", "replace")))
            if answer.status_code != 202:
                return None, None
            instance_id = json.loads(answer.get_body())["id"]
            waiter = asyncio.ensure_future(runtime.wait(instance_id))
            hook_task: asyncio.Task[None] | None = None
            polls = 0
            while not waiter.done():
                done = pg.totals(live_progress(runtime, instance_id)).get("done", 0)
                if not fired and trigger is not None and trigger(ctx, done):
                    fired = True
                    assert during is not None
                    hook_task = asyncio.create_task(during(ctx))
                polls += 1
                if polls % 25 == 0:  # the progress API answers are scanned for secrets too
                    status = await functions["get_sync"](
                        req=func.HttpRequest("GET", f"{APP_URL}/api/syncs/{instance_id}", body=b"",
                                             route_params={"id": instance_id}), client=host.client_binding)
                    http.append((status.status_code, status.get_body().decode("utf-8", "replace")))
                await asyncio.wait([waiter], timeout=0.05)
            if hook_task is not None:
                await hook_task
            elif not fired:
                ctx.problems.append("the mid-run fault never fired (the run ended first)")
            final = await functions["get_sync"](
                req=func.HttpRequest("GET", f"{APP_URL}/api/syncs/{instance_id}", body=b"",
                                     route_params={"id": instance_id}), client=host.client_binding)
            http.append((final.status_code, final.get_body().decode("utf-8", "replace")))
            instance = waiter.result()
            ctx.state["history"] = json.dumps([i.status_json(show_input=True, show_history=True)
                                               for i in runtime.instances.values()], default=str)
            return instance.status, instance.output if instance.status == "Completed" else instance.error
    finally:
        await runtime.close()
        if ctx.pool is not None:
            await ctx.pool.close()
        await close_engines()
        # The Durable SDK keeps one module-global aiohttp session bound to the loop that first used it; close it
        # here so code running on another loop afterwards (other tests, a second matrix) gets a fresh one.
        await http_utils._close_session()


def observe(lab: Lab, container: str, summary: dict[str, Any] | None, outcome: Outcome,
            scanner: Scanner) -> Observed:
    """Read the run's output back with the account key: manifest, marker, every data row; scan every blob."""
    service = lab.blob_service()
    client = service.get_container_client(container)
    partitions: list[dict[str, Any]] = []
    marker = False
    rows: list[Row] = []
    data_blobs: list[str] = []
    run_id = summary["run_id"] if summary else None
    try:
        names = [b.name for b in client.list_blobs()] if client.exists() else []
        for name in names:
            data = client.download_blob(name).readall()
            scanner.scan(f"blob {name}", gzip.decompress(data) if name.endswith(".gz") else data)
            if summary and name == summary["manifest_path"]:
                partitions = orjson.loads(data)["partitions"]
            if summary and name == summary["manifest_path"].rsplit("/", 1)[0] + "/_SUCCESS":
                marker = True
            parts = name.split("/")
            if run_id and len(parts) >= 5 and parts[2] in CATALOG and parts[4] == f"run={run_id}":
                data_blobs.append(name)
                spec = CATALOG[parts[2]]
                text = gzip.decompress(data) if name.endswith(".gz") else data
                for line in text.splitlines():
                    record = orjson.loads(line)
                    parent = record.get(spec.parent_key) if spec.fan_out and spec.parent_key else None
                    rows.append(Row(spec.name, parent, str(record.get(spec.id_column)), name))
    finally:
        service.close()
    return Observed(outcome, partitions, marker, rows, data_blobs)


def judge(lab: Lab, ctx: RunContext, container: str, status: str | None, summary: Any, expectation: Expectation,
          logs: list[str], http: list[tuple[int, str]]) -> Verdict:
    lab.collect_secrets()
    _, tokens = lab.issued_tokens(0)
    for token in tokens:
        lab.secrets.add_token(token)
    scanner = Scanner(lab.secrets)
    if status == "Completed" and isinstance(summary, dict):
        outcome: Outcome = summary["status"]
        observed_summary: dict[str, Any] | None = summary
    elif status is None:
        outcome, observed_summary = "refused", None
    else:
        outcome, observed_summary = "failed", None
        ctx.problems.append(f"the orchestration itself ended {status}: {str(summary)[:300]}")
    observed = observe(lab, container, observed_summary, outcome, scanner)
    scanner.scan("log", "\n".join(logs))
    worker_log = lab.workdir / "worker.log"
    if worker_log.exists():
        scanner.scan("worker log", worker_log.read_bytes())
        worker_log.unlink()
    for code, text in http:
        scanner.scan(f"http answer {code}", text)
    scanner.scan("durable state", ctx.state.get("history", ""))
    fan_out = {name: spec.fan_out and spec.parent is not None for name, spec in CATALOG.items()}
    verdict = evaluate(ctx.expected, observed, expectation, scanner.leaks, fan_out)
    verdict.problems.extend(ctx.problems)
    return verdict


def new_container(name: str) -> str:
    return f"fm-{name.replace('_', '-')[:40]}-{uuid.uuid4().hex[:8]}".lower()


def app_settings(lab: Lab, container: str, extra: dict[str, str]) -> dict[str, str]:
    return {**stack_app_settings(lab.env), "OUTPUT_CONTAINER": container, "OUTPUT_FORMAT": "jsonl.gz", **extra}


def elapsed(start: float) -> float:
    return round(time.monotonic() - start, 1)


__all__ = ["Hook", "Lab", "LogCapture", "RunContext", "RunRecord", "app_settings", "applied", "captured_logs",
           "elapsed", "judge", "new_container", "run_once"]
