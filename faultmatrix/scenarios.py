"""The scenarios: each is a full orchestrated run (or two) with one production fault injected.

A scenario is data plus small hooks: `arrange` switches the fault on before the run, `during` fires once mid-run
(when `trigger` says so), `cleanup` switches it off, and `verify` collects the evidence that the fault really
happened (a scenario whose fault never fired would pass without proving anything, so that is a failure too).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from faultmatrix.check import Expectation
from faultmatrix.lab import RunContext
from faultmatrix.rss import MB
from scripts.graph_permissions import required_grants
from shared.config import SETTINGS_BY_NAME
from shared.streams import CATALOG

ALL = tuple(CATALOG)
DIRECTORY = ("users", "groups", "group_member", "group_owner", "directory_roles", "directory_role_member",
             "applications", "service_principals", "directory_role_templates")
OUTLOOK = ("mail_messages", "calendar_events", "contacts")
TEAMS = ("teams", "channels", "team_member", "chats", "chat_messages")
REPORTS = ("audit_logs_directory", "audit_logs_signins")


def _nothing(ctx: RunContext) -> None:
    return None


def _no_evidence(ctx: RunContext, http: list[tuple[int, str]]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    streams: tuple[str, ...] = ALL
    expectation: Expectation = field(default_factory=Expectation)
    settings: Mapping[str, str] = field(default_factory=dict)
    arrange: Callable[[RunContext], None] = _nothing
    during: Callable[[RunContext], Coroutine[Any, Any, None]] | None = None
    trigger: Callable[[RunContext, int], bool] | None = None
    cleanup: Callable[[RunContext], None] = _nothing
    verify: Callable[[RunContext, list[tuple[int, str]]], None] = _no_evidence
    body: Callable[[RunContext], dict[str, Any]] | None = None
    worker: bool = False  # activities in a worker process that can be SIGKILLed
    runs: int = 1
    second_start: bool = False
    commit_faults: int = 0  # blob commits go through a proxy that fails each blob's first N `Put Block List`
    needs_trap: bool = False  # an HTTPS listener on another origin is put in ctx.state["trap"]
    between: Callable[[RunContext], None] | None = None  # between the runs of a two-run scenario
    real_timers: bool = False  # durable timers really wait (re-run backoff against a real throttling window)
    quick: bool = False  # in the quick subset (`-m quick` / `--quick`); every scenario still runs in CI


# --- evidence helpers ------------------------------------------------------------------------------------------------
def _snapshot(ctx: RunContext) -> None:
    ctx.state["counters"] = ctx.lab.counters()


def _delta(ctx: RunContext) -> dict[str, Any]:
    before = ctx.state.get("counters") or {}
    after = ctx.lab.counters()
    out: dict[str, Any] = {"requests": after["requests"] - before.get("requests", 0)}
    for section in ("throttled_by_scope", "faults", "by_status"):
        old = before.get(section, {})
        out[section] = {k: v - old.get(k, 0) for k, v in after[section].items() if v - old.get(k, 0)}
    return out


def _graph(patch: dict[str, Any]) -> Callable[[RunContext], None]:
    def arrange(ctx: RunContext) -> None:
        _snapshot(ctx)
        ctx.lab.graph_settings(patch)
    return arrange


def _throttled(*scopes: str) -> Callable[[RunContext, list[tuple[int, str]]], None]:
    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        seen = _delta(ctx)["throttled_by_scope"]
        ctx.notes.append("429s " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())) if seen else "no 429s")
        for scope in scopes:
            if not any(k == scope or k.startswith(scope + ".") for k in seen):
                ctx.problems.append(f"the emulator answered no 429 in scope {scope}")
    return verify


def _faulted(*kinds: str) -> Callable[[RunContext, list[tuple[int, str]]], None]:
    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        seen = _delta(ctx)["faults"]
        ctx.notes.append("injected " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())) if seen else
                         "nothing injected")
        for kind in kinds:
            if not seen.get(kind):
                ctx.problems.append(f"no {kind} fault was injected")
    return verify


def _at_progress(share: float) -> Callable[[RunContext, int], bool]:
    def trigger(ctx: RunContext, done: int) -> bool:
        return done >= max(1, int(len(ctx.expected) * share))
    return trigger


# --- throttling ------------------------------------------------------------------------------------------------------
STORM_RERUNS = {"SYNC_PARTITION_RERUNS": "3", "SYNC_RERUN_DELAY_SECONDS": "2"}
THROTTLING = [
    Scenario("429_directory", "429 storm, directory resource units (tenant+app bucket), Retry-After",
             DIRECTORY, arrange=_graph({"throttle": {"budget_scale": 0.004}}), verify=_throttled("directory"),
             quick=True),
    Scenario("429_reports", "429 storm, identity reports (5 per 10 s per app+tenant), Retry-After", REPORTS,
             arrange=_graph({"throttle": {"budget_scale": 0.2}}), verify=_throttled("reports")),
    Scenario("429_conditional_access", "429 storm, conditional access (1/s per tenant, no Retry-After)",
             ("conditional_access_policies", "users"),
             arrange=_graph({"throttle": {"scale": 1.0}}), verify=_throttled("conditional_access")),
    Scenario("429_teams", "429 storm, Teams per resource and per app+tenant, Retry-After", TEAMS,
             arrange=_graph({"throttle": {"budget_scale": 0.5, "scale": 0.5}}), verify=_throttled("teams")),
    # These storms may outlast a partition's request attempts (a mailbox allowed 2 requests per 1.2 s while its
    # folders are read 4 at a time, or the whole tenant): re-run passes wait on real timers.
    Scenario("429_outlook", "429 storm, Outlook per mailbox (concurrency 4, rate), Retry-After", OUTLOOK,
             settings=STORM_RERUNS, arrange=_graph({"throttle": {"budget_scale": 0.0002, "scale": 0.002}}),
             verify=_throttled("outlook"), real_timers=True),
    Scenario("429_global", "429 storm, global per-app limit, Retry-After", ALL, settings=STORM_RERUNS,
             arrange=_graph({"throttle": {"global_budget_scale": 0.0002}}), verify=_throttled("global"),
             real_timers=True),
    Scenario("429_no_retry_after", "429 storms in every scope at once, no Retry-After anywhere", ALL,
             settings=STORM_RERUNS, arrange=_graph({"throttle": {"budget_scale": 0.003, "retry_after": False}}),
             verify=_throttled("directory", "reports", "teams"), real_timers=True),
    Scenario("429_outlasts_attempts", "429 storm longer than GRAPH_MAX_ATTEMPTS: failed partitions re-run after a "
             "durable timer", ("users", "groups", "group_member", "group_owner"),
             settings={"GRAPH_MAX_ATTEMPTS": "1", "SYNC_PARTITION_RERUNS": "4", "SYNC_RERUN_DELAY_SECONDS": "2"},
             arrange=_graph({"throttle": {"budget_scale": 0.004}}), verify=_throttled("directory"),
             expectation=Expectation(min_reruns=1), real_timers=True),
]

# --- transport and server faults -------------------------------------------------------------------------------------
TRANSPORT = [
    Scenario("5xx_10_percent", "10% of Graph answers 503 (half with Retry-After) or 504", ALL,
             arrange=_graph({"faults": {"seed": 5, "error_rate": 0.1}}), verify=_faulted("503", "504"), quick=True),
    Scenario("reset_mid_body", "connections reset mid-body (full Content-Length, half the body)", ALL,
             arrange=_graph({"faults": {"seed": 6, "truncate_rate": 0.08}}), verify=_faulted("truncate")),
    Scenario("reset_before_answer", "connections dropped before any response byte", ALL,
             arrange=_graph({"faults": {"seed": 7, "drop_rate": 0.08}}), verify=_faulted("drop")),
    Scenario("empty_pages", "list pages served empty with a nextLink (legal in Graph)", ALL,
             arrange=_graph({"faults": {"seed": 8, "empty_page_rate": 0.2}}), verify=_faulted("empty_page")),
    Scenario("slower_than_timeout", "answers slower than the client read timeout (GRAPH_REQUEST_TIMEOUT_SECONDS=1, "
             "10% delayed 1.5-3 s)", ("users", "groups", "group_member", "applications", "service_principals"),
             settings={"GRAPH_REQUEST_TIMEOUT_SECONDS": "1"},
             arrange=_graph({"faults": {"seed": 9, "tail_rate": 0.1, "tail_ms": 1500}}),
             expectation=Expectation(min_retries=1)),
]


def baseline() -> Scenario:
    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        ctx.notes.append(f"{_delta(ctx)['requests']} Graph requests")
    return Scenario("baseline", "no fault: all 22 streams", ALL, arrange=_snapshot, verify=verify, quick=True)




def by_name(names: list[str] | None) -> list[Scenario]:
    scenarios = all_scenarios()
    if not names:
        return scenarios
    known = {s.name: s for s in scenarios}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]




# --- worker, storage, identity --------------------------------------------------------------------------------------
def _victim(ctx: RunContext, stream: str) -> str:
    sizes = {parent: len(ids or ()) for (name, parent), ids in ctx.expected.items() if name == stream and parent}
    return max(sorted(sizes), key=lambda p: sizes[p])


def worker_killed() -> Scenario:
    """SIGKILL the worker process while the largest mailbox's partition is waiting on Graph (slowed to be sure)."""
    def arrange(ctx: RunContext) -> None:
        victim = _victim(ctx, "mail_messages")
        ctx.state["victim"] = victim
        # every request of that mailbox (the incremental reader goes through /mailFolders/{id}/messages/delta)
        ctx.lab.graph_settings({"faults": {"latency_ms": 1500, "path_prefix": f"/users/{victim}/"}})

    def trigger(ctx: RunContext, done: int) -> bool:
        for start in ctx.started:
            payload = json.loads(start.get("input") or "null")
            if isinstance(payload, dict) and payload.get("stream") == "mail_messages" and \
                    payload.get("parent_id") == ctx.state["victim"]:
                return True
        return False

    async def during(ctx: RunContext) -> None:
        await asyncio.sleep(0.5)  # its first Graph request is in flight (1.5 s of latency)
        assert ctx.pool is not None
        pid = ctx.pool.kill()
        ctx.notes.append(f"SIGKILLed worker pid {pid} mid-partition (mail_messages of the largest mailbox)")

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        assert ctx.pool is not None
        ctx.notes.append(f"{ctx.pool.started_workers} worker processes")
        if not ctx.pool.killed or ctx.pool.started_workers < 2:
            ctx.problems.append("no worker was killed and replaced")
        again = [s for s in ctx.started if json.loads(s.get("input") or "null") and
                 json.loads(s["input"]).get("parent_id") == ctx.state["victim"] and
                 json.loads(s["input"]).get("stream") == "mail_messages"]
        if len(again) < 2:
            ctx.problems.append("the killed partition was not run again by the durable retry")

    return Scenario("worker_killed", "worker process SIGKILLed mid-partition; the durable retry re-runs it",
                    ("users", "mail_messages", "contacts"), arrange=arrange, trigger=trigger, during=during,
                    verify=verify, worker=True, quick=True)


def azurite_restart() -> Scenario:
    async def during(ctx: RunContext) -> None:
        await asyncio.to_thread(ctx.lab.azurite, "stop")
        ctx.notes.append("Azurite stopped")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(ctx.lab.azurite, "start")
        ctx.notes.append("restarted")

    return Scenario("azurite_restart", "Azurite stopped and restarted mid-run", ALL, trigger=_at_progress(0.3),
                    during=during)


def block_commit_fails() -> Scenario:
    """Every data blob's commit (Put Block List, or Put Blob for a partition of one block) answers 500 on its first
    four attempts (more than the Storage SDK's retries): the partition fails as retryable, the re-run pass writes
    and commits again."""
    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        proxy = ctx.state.get("blob_proxy")
        failed = proxy.failed if proxy is not None else 0
        ctx.notes.append(f"{failed} data-blob commits failed, {proxy.passed_commits if proxy else 0} passed")
        if not failed:
            ctx.problems.append("no data-blob commit was failed")

    return Scenario("block_commit_fails", "data-blob commits fail (500) beyond the Storage SDK's retries",
                    ("users", "groups", "group_member"), commit_faults=4, verify=verify,
                    expectation=Expectation(min_reruns=1))


def container_missing() -> Scenario:
    def arrange(ctx: RunContext) -> None:
        with ctx.lab.blob_service() as service:
            exists = service.get_container_client(ctx.settings["OUTPUT_CONTAINER"]).exists()
        ctx.notes.append("container absent before the run" if not exists else "container existed")
        if exists:
            ctx.problems.append("the container existed before the run")

    return Scenario("container_missing", "the output container does not exist (first run on a fresh lake)",
                    ("users", "groups", "group_member"), arrange=arrange)


def _vault_faults(unavailable: bool, retry_after: int | None = 0) -> Callable[[RunContext], None]:
    def arrange(ctx: RunContext) -> None:
        ctx.state["t0"] = time.monotonic()
        ctx.state["vault0"] = ctx.lab.admin("keyvault", "GET", "/stats")["requests"]
        ctx.lab.admin("keyvault", "PUT", "/faults", {"unavailable": unavailable, "status": 503,
                                                     "retry_after_seconds": retry_after})
    return arrange


def _vault_calls(ctx: RunContext) -> int:
    before = ctx.state.get("vault0", {})
    after = ctx.lab.admin("keyvault", "GET", "/stats")["requests"]
    return sum(v - before.get(k, 0) for k, v in after.items())


def vault_down() -> Scenario:
    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        ctx.notes.append(f"{_vault_calls(ctx)} vault requests refused with 503")

    # The SDK's retries stay as many as in Azure; only their waits are shorter (0.05 x 2^n s instead of 0.8 x 2^n),
    # else the run's dozen sequential failed reads take a minute.
    return Scenario("vault_down_whole_run", "Key Vault unavailable for the whole run", ("users", "groups",
                    "group_member", "contacts"), settings={"KEY_VAULT_RETRY_BACKOFF_SECONDS": "0.05"},
                    arrange=_vault_faults(True, 0), verify=verify,
                    expectation=Expectation("failed", frozenset({"users", "groups", "group_member", "contacts"}),
                                            must_fail=True,
                                            failure_codes=frozenset({"KeyVaultUnavailable", "ParentListingFailed"}),
                                            message_must_name={s: "Key Vault" for s in ("users", "groups",
                                                                                        "group_member", "contacts")}))


def vault_recovers() -> Scenario:
    async def during(ctx: RunContext) -> None:
        await asyncio.to_thread(ctx.lab.admin, "keyvault", "PUT", "/faults", {"unavailable": False})
        ctx.notes.append(f"vault back after {time.monotonic() - ctx.state['t0']:.1f}s")

    def trigger(ctx: RunContext, done: int) -> bool:
        return bool(time.monotonic() - ctx.state["t0"] > 2.5)

    return Scenario("vault_down_at_start", "Key Vault unavailable when the run starts, back 2.5 s later",
                    ("users", "groups", "group_member", "contacts"), arrange=_vault_faults(True, 1),
                    trigger=trigger, during=during)


def vault_mid_run() -> Scenario:
    async def during(ctx: RunContext) -> None:
        await asyncio.to_thread(ctx.lab.admin, "keyvault", "PUT", "/faults",
                                {"unavailable": True, "retry_after_seconds": 0})
        ctx.notes.append("vault down from 30% of partitions to the end")

    return Scenario("vault_down_mid_run", "Key Vault unavailable from mid-run to the end (secret cache carries on)",
                    ALL, arrange=_vault_faults(False), trigger=_at_progress(0.3), during=during)


def secret_rotated() -> Scenario:
    app_id_key = "graph_app"

    def arrange(ctx: RunContext) -> None:
        app = ctx.lab.env.graph_app.client_id
        ctx.state[app_id_key] = app
        ctx.lab.admin("entra", "PATCH", f"/apps/{app}", {"token_lifetime_seconds": 2})

    async def during(ctx: RunContext) -> None:
        lab = ctx.lab
        app = ctx.state[app_id_key]
        old = [s["key_id"] for s in (await asyncio.to_thread(lab.admin, "entra", "GET", f"/apps/{app}"))["secrets"]]
        new = await asyncio.to_thread(lab.admin, "entra", "POST", f"/apps/{app}/secrets", {})
        value = new.get("value") or new.get("secret", {}).get("value")
        lab.secrets.add("rotated Graph client secret", value)

        def store() -> None:
            with lab.vault() as client:
                client.set_secret(lab.env.graph_app.client_secret_name, value)
        await asyncio.to_thread(store)
        for key_id in old:
            await asyncio.to_thread(lab.admin, "entra", "DELETE", f"/apps/{app}/secrets/{key_id}")
        ctx.state["tokens_at_rotation"] = (await asyncio.to_thread(lab.issued_tokens, 10**9))[0]
        ctx.notes.append(f"new secret in the vault, {len(old)} old secret(s) deleted at 30% of partitions")

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        after = ctx.lab.issued_tokens(10**9)[0] - ctx.state.get("tokens_at_rotation", 10**9)
        ctx.notes.append(f"{after} tokens issued after the rotation")
        if after <= 0:
            ctx.problems.append("no token was issued after the rotation: the new secret was never used")

    return Scenario("secret_rotated", "Graph client secret rotated mid-run (old one deleted), 2 s tokens", ALL,
                    arrange=arrange, trigger=_at_progress(0.3), during=during, verify=verify, quick=True)


def tokens_expire() -> Scenario:
    def arrange(ctx: RunContext) -> None:
        _snapshot(ctx)
        ctx.state["tokens0"] = ctx.lab.issued_tokens(10**9)[0]
        ctx.lab.admin("entra", "PATCH", f"/apps/{ctx.lab.env.graph_app.client_id}", {"token_lifetime_seconds": 2})

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        issued = ctx.lab.issued_tokens(10**9)[0] - ctx.state["tokens0"]
        refused = _delta(ctx)["by_status"].get("401", 0)
        ctx.notes.append(f"{issued} tokens issued, {refused} Graph 401s")
        if issued < 5:
            ctx.problems.append("tokens did not expire during the run")

    return Scenario("tokens_expire", "Graph access tokens live 2 s (expire many times mid-run)", ALL,
                    arrange=arrange, verify=verify)


def truncated_json() -> Scenario:
    return Scenario("truncated_json", "complete HTTP answers whose JSON is cut in half", ALL,
                    arrange=_graph({"faults": {"seed": 9, "malformed_rate": 0.08}}), verify=_faulted("malformed"))


# --- hostile input ----------------------------------------------------------------------------------------------------
def offhost_next_link() -> Scenario:
    """Graph's nextLinks point at another origin: the engine must refuse them before any token is attached."""
    def arrange(ctx: RunContext) -> None:
        trap = ctx.state["trap"]
        ctx.lab.graph_settings({"public_base_url": trap.url})

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        trap = ctx.state["trap"]
        ctx.notes.append(f"trap at {trap.url} saw {len(trap.hits)} request(s)")
        if trap.hits:
            ctx.problems.append(f"the engine followed an off-host nextLink: {trap.hits[:3]}")
        paged = [s for s in ("audit_logs_directory", "audit_logs_signins")
                 if len(ctx.expected.get((s, None)) or ()) > 100]
        if not paged:
            ctx.problems.append("no stream has a second page, the poisoned link was never served")

    return Scenario("offhost_next_link", "nextLinks point to another host (the token must not follow)",
                    ("users", "audit_logs_directory", "audit_logs_signins"), settings={"SYNC_PAGE_SIZE": "100"},
                    arrange=arrange, verify=verify, needs_trap=True,
                    expectation=Expectation("failed", frozenset({"audit_logs_directory", "audit_logs_signins"}),
                                            must_fail=True, failure_codes=frozenset({"OffHostNextLink"})))


# --- security and operations ----------------------------------------------------------------------------------------
def _own_app(ctx: RunContext, name: str, roles: list[str]) -> None:
    """Run the sync as a new app registration granted exactly `roles`, its secret in the vault under a name of its
    own (what an admin does when consenting to a narrower app)."""
    lab = ctx.lab
    app = lab.register_app(name, roles)
    secret_name = f"fm-{name}-secret"
    with lab.vault() as client:
        client.set_secret(secret_name, app["secret"]["value"])
    ctx.settings.update({"GRAPH_CLIENT_ID": app["client_id"], "GRAPH_CLIENT_SECRET_NAME": secret_name})
    ctx.state["roles"] = sorted(roles)
    ctx.notes.append(f"app granted only {len(roles)} role(s)")


def least_privilege() -> Scenario:
    """Every stream with only the least-privileged application permissions the catalog asks for."""
    def arrange(ctx: RunContext) -> None:
        _own_app(ctx, "least-privilege", [g.permission for g in required_grants(ALL)])

    return Scenario("least_privilege", "only the least-privileged Graph permissions for all 22 streams", ALL,
                    arrange=arrange)


MISSING = ("Contacts.Read", "AuditLog.Read.All")
MISSING_STREAMS = ("contacts", "audit_logs_directory", "audit_logs_signins")


def missing_permissions() -> Scenario:
    """Two permissions left out: only their streams fail, each naming the permission to grant."""
    streams = ("users", "groups", "group_member", "mail_messages", *MISSING_STREAMS)

    def arrange(ctx: RunContext) -> None:
        grants = required_grants(streams)
        for permission in MISSING:
            if not any(g.permission == permission for g in grants):
                ctx.problems.append(f"{permission} is not among the streams' least-privileged grants")
        _own_app(ctx, "missing-permissions", [g.permission for g in grants if g.permission not in MISSING])

    named = {"contacts": "Contacts.Read", "audit_logs_directory": "AuditLog.Read.All",
             "audit_logs_signins": "AuditLog.Read.All"}
    return Scenario("missing_permissions", f"least privilege minus {' and '.join(MISSING)}: only their streams fail, "
                    "naming it", streams, arrange=arrange,
                    expectation=Expectation("failed", frozenset(MISSING_STREAMS), must_fail=True,
                                            message_must_name=named))


def two_starts() -> Scenario:
    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        codes = [code for code, _ in http[:2]]
        ctx.notes.append(f"starts answered {codes}")
        if codes != [202, 409] or "already running" not in http[1][1]:
            ctx.problems.append(f"two simultaneous starts answered {codes}, expected one run and one 409")

    return Scenario("two_starts", "the same tenant started twice at once (the singleton must hold)",
                    ("users", "groups"), second_start=True, verify=verify)


def malformed_config() -> Scenario:
    bad = {"SYNC_STREAMS_CONFIG": '{"users": {"page_size": ', "GRAPH_MAX_ATTEMPTS": "many"}

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        code, text = http[0] if http else (0, "")
        ctx.notes.append(f"start answered {code}")
        if code != 500 or not all(name in text for name in bad):
            ctx.problems.append(f"malformed settings were not refused naming each one: {code} {text[:300]}")

    return Scenario("malformed_config", "malformed app settings (broken JSON, a non-number): refused, each named",
                    ("users",), settings=bad, verify=verify, expectation=Expectation("refused"))


# --- delta state ----------------------------------------------------------------------------------------------------
INCREMENTAL = ("users", "groups", "group_member", "mail_messages", "contacts")


def _manifests(ctx: RunContext) -> dict[str, dict[str, Any]]:
    """run id -> manifest document, for every run the scenario made."""
    service = ctx.lab.blob_service()
    try:
        client = service.get_container_client(ctx.settings["OUTPUT_CONTAINER"])
        out: dict[str, dict[str, Any]] = {}
        for blob in client.list_blobs():
            if blob.name.endswith("/_manifest.json"):
                doc = json.loads(client.download_blob(blob.name).readall())
                out[doc["run"]["run_id"]] = doc
        return out
    finally:
        service.close()


def _checkpoints(ctx: RunContext) -> dict[str, Any]:
    """blob name -> checkpoint document (or the raw text when it does not parse)."""
    service = ctx.lab.blob_service()
    try:
        client = service.get_container_client(ctx.settings["OUTPUT_CONTAINER"])
        out: dict[str, Any] = {}
        for blob in client.list_blobs(name_starts_with=f"graph/{ctx.lab.env.tenant_id}/_state/"):
            data = client.download_blob(blob.name).readall()
            try:
                out[blob.name] = json.loads(data)
            except ValueError:
                out[blob.name] = data.decode("utf-8", "replace")
        return out
    finally:
        service.close()


def _no_checkpoint_ahead(ctx: RunContext) -> None:
    """Every checkpoint names a run whose manifest reports that partition ok with a committed blob."""
    manifests = _manifests(ctx)
    ok = {(run_id, p["stream"], p.get("parent_id")) for run_id, doc in manifests.items() for p in doc["partitions"]
          if p["status"] == "ok" and p.get("blob_path")}
    checked = 0
    for name, doc in _checkpoints(ctx).items():
        if not isinstance(doc, dict):
            ctx.problems.append(f"checkpoint {name} left unreadable after the run")
            continue
        checked += 1
        if (doc.get("run_id"), doc.get("stream"), doc.get("parent_id")) not in ok:
            ctx.problems.append(f"checkpoint {name} is ahead of committed data (run {doc.get('run_id')})")
    ctx.notes.append(f"{checked} checkpoints, none ahead of committed data" if checked else "no checkpoints")
    if not checked:
        ctx.problems.append("the incremental streams saved no checkpoint")


def _last_partitions(ctx: RunContext) -> dict[tuple[str, str | None], dict[str, Any]]:
    manifests = sorted(_manifests(ctx).values(), key=lambda d: str(d.get("generated_at")))
    last = manifests[-1]["partitions"] if manifests else []
    return {(p["stream"], p.get("parent_id")): p for p in last}


def _victims(ctx: RunContext) -> list[tuple[str, str | None]]:
    contacts = _victim(ctx, "contacts")
    mail = sorted(p for (s, p), ids in ctx.expected.items() if s == "mail_messages" and ids and p and p != contacts)[0]
    return [("contacts", contacts), ("mail_messages", mail), ("users", None)]


def checkpoint_damaged() -> Scenario:
    """Second run after one checkpoint was deleted and two were overwritten with garbage: those partitions read a
    fresh snapshot, every other partition only its changes (none), and nothing is lost or duplicated."""
    def between(ctx: RunContext) -> None:
        from shared.state.checkpoints import checkpoint_path

        victims = _victims(ctx)
        ctx.state["victims"] = victims
        service = ctx.lab.blob_service()
        try:
            client = service.get_container_client(ctx.settings["OUTPUT_CONTAINER"])
            first, *rest = victims
            client.delete_blob(checkpoint_path("graph", ctx.lab.env.tenant_id, first[0], first[1]))
            for stream, parent in rest:
                client.upload_blob(checkpoint_path("graph", ctx.lab.env.tenant_id, stream, parent),
                                   b'{"version": 1, "cursors": [tru', overwrite=True)
        finally:
            service.close()
        ctx.notes.append("1 checkpoint deleted, 2 corrupted between the runs")

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        parts = _last_partitions(ctx)
        victims = set(ctx.state.get("victims", []))
        for key in victims:
            if parts.get(key, {}).get("kind") != "snapshot":
                ctx.problems.append(f"{key} did not read a fresh snapshot: {parts.get(key, {}).get('kind')}")
        changes = [k for k, p in parts.items() if p.get("kind") == "changes"]
        if not changes:
            ctx.problems.append("no partition read only its changes on the second run")
        ctx.notes.append(f"second run: {len(victims)} snapshots, {len(changes)} change partitions")
        _no_checkpoint_ahead(ctx)

    return Scenario("checkpoint_damaged", "checkpoint blobs deleted or corrupted between two runs", INCREMENTAL,
                    runs=2, between=between, verify=verify)


def delta_token_expired() -> Scenario:
    """Directory delta tokens expire between two runs: Graph answers 410 syncStateNotFound and only those
    partitions resync; Outlook partitions carry on with their changes."""
    def between(ctx: RunContext) -> None:
        _snapshot(ctx)
        ctx.lab.graph_settings({"delta_token_ttl_seconds": 0.001})

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        parts = _last_partitions(ctx)
        gone = _delta(ctx)["by_status"].get("410", 0)
        resynced = sorted(k[0] for k, p in parts.items() if p.get("resynced"))
        ctx.notes.append(f"{gone} Graph 410s, resynced: {', '.join(sorted(set(resynced))) or 'none'}")
        if not gone or "users" not in resynced:
            ctx.problems.append("expired delta tokens did not make the directory partitions resync")
        if any(k[0] in ("mail_messages", "contacts") and p.get("kind") != "changes" for k, p in parts.items()
               if p["status"] == "ok"):
            ctx.problems.append("an Outlook partition lost its cursor although its token did not expire")
        _no_checkpoint_ahead(ctx)

    return Scenario("delta_token_expired", "delta tokens expired between two runs (410): those partitions resync",
                    INCREMENTAL, runs=2, between=between, verify=verify)


# --- hostile ids ----------------------------------------------------------------------------------------------------
def _hostile_ids(tag: str) -> list[str]:
    return [f"19:../../../{tag}/escape@thread.v2", f"19:{tag}%2F..%2Fb@thread.v2",
            f"19:ünïcødé/名前 ?#{tag}@thread.v2", f"19:{tag}" + "x" * 1000 + "@thread.v2"]


def hostile_ids() -> Scenario:
    """Chats (the parents of chat_messages) whose ids carry `../`, `%2F`, unicode, `?#` and 1,000 characters,
    created through the Graph admin API before the expected data is read: every one must be copied into a blob
    whose name stays under the run's prefix."""
    def arrange(ctx: RunContext) -> None:
        lab = ctx.lab
        tag = uuid.uuid4().hex[:8]
        user = sorted(lab.reader().ids("/users"))[0]
        ops: list[dict[str, Any]] = []
        for chat in _hostile_ids(tag):
            ops.append({"op": "create", "kind": "chats", "parents": [user],
                        "record": {"id": chat, "chatType": "group", "topic": f"hostile {tag}"}})
            ops.append({"op": "create", "kind": "chatMessages", "parents": [chat],
                        "record": {"id": f"../{tag}/message", "body": {"contentType": "text", "content": "hi"}}})
        lab.admin("graph", "POST", "/tenant", {"ops": ops})
        ctx.state["hostile"] = _hostile_ids(tag)
        ctx.expected.clear()
        ctx.expected.update(lab.expected(list(HOSTILE_STREAMS)))

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        service = ctx.lab.blob_service()
        try:
            names = [b.name for b in service.get_container_client(ctx.settings["OUTPUT_CONTAINER"]).list_blobs()]
        finally:
            service.close()
        for name in names:
            segments = name.split("/")
            if segments[0] != "graph" or any(s in ("", ".", "..") for s in segments) or len(name) > 1024:
                ctx.problems.append(f"unsafe blob name {name[:200]!r}")
        hostile = set(ctx.state.get("hostile", []))
        held = [k for k, ids in ctx.expected.items() if k[0] == "chat_messages" and k[1] in hostile and ids]
        ctx.notes.append(f"{len(held)} hostile chat partitions with records, {len(names)} blob names checked")
        if len(held) != len(hostile):
            ctx.problems.append(f"only {len(held)} of {len(hostile)} hostile chats hold messages in the emulator")

    return Scenario("hostile_ids", "ids with ../, %2F, unicode, ?# and 1,000 characters (safe blob names)",
                    HOSTILE_STREAMS, arrange=arrange, verify=verify)


HOSTILE_STREAMS = ("users", "chats", "chat_messages")


# --- huge pages and worker memory -----------------------------------------------------------------------------------
HUGE_PAGE = 50 * MB
OVERSIZED_PAGE = 200 * MB
DEFAULT_MAX_PAGE_MB = int(SETTINGS_BY_NAME["GRAPH_MAX_PAGE_MB"].default or 0)
# What a page may cost the worker beyond a normal run: read buffer, parsed records, the JSONL written, headroom for
# allocator slack. Without a bound the cost grows with whatever the server sends.
PAGE_COST_FACTOR = 5


def _mb(value: int) -> str:
    return f"{value / MB:.0f} MB"


def _rss_first_run(ctx: RunContext) -> None:
    assert ctx.pool is not None
    ctx.state["rss_normal"] = ctx.pool.peak_rss


def _rss_note(ctx: RunContext, label: str) -> int:
    """Notes the worker's peak RSS of both runs; returns the growth of the second over the first."""
    assert ctx.pool is not None
    normal, huge = int(ctx.state.get("rss_normal", 0)), ctx.pool.peak_rss
    ctx.notes.append(f"worker peak RSS {_mb(normal)} with normal pages, {_mb(huge)} with {label} "
                     f"(+{_mb(huge - normal)})")
    if not normal or not huge:
        ctx.problems.append("the worker's memory was not measured")
    return huge - normal


def _huge_pages_served(ctx: RunContext) -> int:
    return int(_delta(ctx)["faults"].get("huge_page", 0))


def _blob_text_size(ctx: RunContext, path: str | None) -> int:
    if not path:
        return 0
    service = ctx.lab.blob_service()
    try:
        data = service.get_container_client(ctx.settings["OUTPUT_CONTAINER"]).download_blob(path).readall()
    finally:
        service.close()
    return len(gzip.decompress(data) if path.endswith(".gz") else data)


def huge_page() -> Scenario:
    """The owner page of the group with the most owners is padded to 50 MB (a full copy every run): it is copied
    whole, and the worker's peak RSS (psutil and the kernel's high-water mark, read from outside) grows by a bounded
    multiple of the page over a run with normal pages."""
    def between(ctx: RunContext) -> None:
        _rss_first_run(ctx)
        _snapshot(ctx)
        victim = _victim(ctx, "group_owner")
        ctx.state["victim"] = victim
        ctx.lab.graph_settings({"faults": {"huge_page_bytes": HUGE_PAGE, "path_prefix": f"/groups/{victim}/owners"}})

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        served = _huge_pages_served(ctx)
        growth = _rss_note(ctx, f"a {_mb(HUGE_PAGE)} page ({served} served)")
        if not served:
            ctx.problems.append("no huge page was served")
        if growth > PAGE_COST_FACTOR * HUGE_PAGE:
            ctx.problems.append(f"a {_mb(HUGE_PAGE)} page cost the worker {_mb(growth)}, more than "
                                f"{PAGE_COST_FACTOR}x the page")
        part = _last_partitions(ctx).get(("group_owner", ctx.state.get("victim")), {})
        written = _blob_text_size(ctx, part.get("blob_path"))
        ctx.notes.append(f"its blob holds {_mb(written)} of JSON Lines")
        if written < HUGE_PAGE * 9 // 10:
            ctx.problems.append(f"the huge page's partition wrote only {written} bytes of records")

    return Scenario("huge_page", "a 50 MB page (memory stays bounded): copied whole, worker RSS measured from "
                    "outside against a run with normal pages", ("groups", "group_owner"), runs=2, worker=True,
                    between=between, verify=verify)


def page_over_limit() -> Scenario:
    """The users page is padded to 200 MB, gzip-chunked (no length to refuse up front): the engine counts the
    inflated bytes and gives up at GRAPH_MAX_PAGE_MB, so only that partition fails (not retried, no checkpoint,
    no `_SUCCESS`) and the worker's memory stays within a bounded multiple of the limit, not of the page."""
    first, second = ["groups", "group_member"], ["users", "groups", "group_member"]

    def body(ctx: RunContext) -> dict[str, Any]:
        ctx.state["run"] = int(ctx.state.get("run", 0)) + 1
        return {"streams": first if ctx.state["run"] == 1 else second}

    def between(ctx: RunContext) -> None:
        _rss_first_run(ctx)
        _snapshot(ctx)
        ctx.lab.graph_settings({"faults": {"huge_page_bytes": OVERSIZED_PAGE, "path_prefix": "/users"}})

    def verify(ctx: RunContext, http: list[tuple[int, str]]) -> None:
        from shared.state.checkpoints import checkpoint_path

        served = _huge_pages_served(ctx)
        limit = int(ctx.settings.get("GRAPH_MAX_PAGE_MB") or DEFAULT_MAX_PAGE_MB)
        growth = _rss_note(ctx, f"a {_mb(OVERSIZED_PAGE)} page, GRAPH_MAX_PAGE_MB={limit}")
        if served != 1:
            ctx.problems.append(f"the oversized page was served {served} times; a page too large is not asked for "
                                "again")
        if growth > 2 * limit * MB:
            ctx.problems.append(f"refusing the page cost the worker {_mb(growth)}, more than twice the limit")
        users = _last_partitions(ctx).get(("users", None), {})
        if users.get("reruns"):
            ctx.problems.append("the oversized partition was re-run although the failure is not transient")
        if checkpoint_path("graph", ctx.lab.env.tenant_id, "users", None) in _checkpoints(ctx):
            ctx.problems.append("the failed users partition saved a checkpoint")
        _no_checkpoint_ahead(ctx)

    return Scenario("page_over_limit", "a 200 MB page, beyond GRAPH_MAX_PAGE_MB: only its partition fails, naming "
                    "the setting; memory bounded by the limit", tuple(second), runs=2, worker=True, body=body,
                    between=between, verify=verify,
                    expectation=Expectation("failed", frozenset({"users"}), must_fail=True,
                                            failure_codes=frozenset({"ResponseTooLarge"}),
                                            message_must_name={"users": "GRAPH_MAX_PAGE_MB"}))


def all_scenarios() -> list[Scenario]:
    return [baseline(), *THROTTLING, *TRANSPORT, truncated_json(), worker_killed(), azurite_restart(),
            block_commit_fails(), container_missing(), vault_down(), vault_recovers(), vault_mid_run(),
            secret_rotated(), tokens_expire(), offhost_next_link(), least_privilege(), missing_permissions(),
            two_starts(), malformed_config(), checkpoint_damaged(), delta_token_expired(), hostile_ids(), huge_page(),
            page_over_limit()]
