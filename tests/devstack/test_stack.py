"""`python -m devstack up` end to end: env file contract, Blob over HTTPS with the workload identity, the full
credential chain (vault -> Graph app token), persistence across restarts, Azurite restarts, and no orphans."""

from __future__ import annotations

import json
import os
import signal
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import msal  # type: ignore[import-untyped]
import psutil
import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from azure.storage.blob import BlobServiceClient

from devstack.env import StackEnv
from devstack.process import StackProcess, StackStartError, start_stack
from devstack.stack import GRAPH_APP_ROLES
from tests.conftest import STACK_ARGS, RunningStack, ca_session

CONTRACT_KEYS = {
    "tenant_id", "ca_bundle", "authority_host", "graph_url", "graph_admin_url", "key_vault_url", "blob_account_url",
    "storage_connection_string", "graph_app", "workload_identity", "pid",
}  # fmt: skip


def workload_credential(env: StackEnv, **kwargs: Any) -> ClientSecretCredential:
    wid = env.workload_identity
    return ClientSecretCredential(
        env.tenant_id, wid.client_id, wid.client_secret, authority=env.authority_host,
        disable_instance_discovery=True, connection_verify=env.ca_bundle, **kwargs,
    )


def blob_service(env: StackEnv) -> BlobServiceClient:
    return BlobServiceClient(env.blob_account_url, credential=workload_credential(env), connection_verify=env.ca_bundle)


def test_env_file_matches_the_contract(stack: RunningStack) -> None:
    data = json.loads(stack.process.env_file.read_text("utf-8"))
    assert set(data) >= CONTRACT_KEYS
    assert set(data["graph_app"]) == {"client_id", "client_secret_name", "certificate_secret_name",
                                      "certificate_thumbprint"}
    assert data["graph_app"]["client_secret_name"] == "graph-client-secret"
    assert data["graph_app"]["certificate_secret_name"] == "graph-client-certificate"
    assert set(data["workload_identity"]) == {"client_id", "client_secret"}
    assert data["pid"] == stack.process.pid
    assert Path(data["ca_bundle"]).is_absolute() and Path(data["ca_bundle"]).read_text().startswith("-----BEGIN")
    for key in ("authority_host", "key_vault_url", "blob_account_url"):
        assert data[key].startswith("https://127.0.0.1:"), key
    assert stack.process.env_file.stat().st_mode & 0o077 == 0  # holds a client secret
    assert data["azurite_pid"] in stack.process.refresh_descendants()
    assert str(uuid.UUID(data["tenant_id"])) == data["tenant_id"]


async def test_aiohttp_session_trusts_the_stack_ca_only(stack: RunningStack, aiohttp_session: Any) -> None:
    url = f"{stack.env.authority_host}/{stack.env.tenant_id}/v2.0/.well-known/openid-configuration"
    async with aiohttp_session.get(url) as response:
        assert response.status == 200
        assert (await response.json())["token_endpoint"].startswith(stack.env.authority_host)
    system_trust = aiohttp.TCPConnector(ssl=ssl.create_default_context())
    async with aiohttp.ClientSession(connector=system_trust) as plain:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await plain.get(url)


def test_blob_upload_and_list_with_workload_identity_token(stack: RunningStack) -> None:
    service = blob_service(stack.env)
    container = service.get_container_client(f"test-{uuid.uuid4().hex[:8]}")
    container.create_container()
    container.upload_blob("graph/users/part-0001.jsonl", b'{"id":"1"}\n')
    container.upload_blob("graph/users/part-0002.jsonl", b'{"id":"2"}\n')
    assert [b.name for b in container.list_blobs(name_starts_with="graph/users/")] == [
        "graph/users/part-0001.jsonl", "graph/users/part-0002.jsonl"]
    assert container.download_blob("graph/users/part-0002.jsonl").readall() == b'{"id":"2"}\n'


def test_blob_rejects_a_token_for_another_audience(stack: RunningStack) -> None:
    token = workload_credential(stack.env).get_token("https://vault.azure.net/.default").token
    response = stack.http().get(f"{stack.env.blob_account_url}?comp=list",
                                headers={"Authorization": f"Bearer {token}", "x-ms-version": "2025-11-05"})
    assert response.status_code in (401, 403)


def _graph_app_tokens(env: StackEnv) -> list[str]:
    """The product's path: workload identity reads the Graph credentials from the vault, then MSAL signs in."""
    vault = SecretClient(env.key_vault_url, workload_credential(env), verify_challenge_resource=False,
                         connection_verify=env.ca_bundle)
    client_secret = vault.get_secret(env.graph_app.client_secret_name).value
    pem = vault.get_secret(env.graph_app.certificate_secret_name).value
    assert client_secret and pem
    authority = f"{env.authority_host}/{env.tenant_id}"
    tokens = []
    for credential in (client_secret, {"private_key": pem, "thumbprint": env.graph_app.certificate_thumbprint}):
        app = msal.ConfidentialClientApplication(env.graph_app.client_id, client_credential=credential,
                                                 authority=authority, http_client=ca_session(env.ca_bundle),
                                                 instance_discovery=False)
        result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
        assert "access_token" in result, result
        tokens.append(result["access_token"])
    return tokens


def test_session_stack_runs_the_small_unthrottled_tenant(stack: RunningStack) -> None:
    settings = stack.admin.graph("GET", "/settings")
    assert settings["throttle"]["enabled"] is False
    assert stack.admin.entra("GET", "/settings") == {"token_lifetime_seconds": 3599}


def test_demo_app_signs_in_with_secret_and_certificate_from_the_vault(stack: RunningStack) -> None:
    for token in _graph_app_tokens(stack.env):
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["appid"] == stack.env.graph_app.client_id
        assert claims["roles"] == sorted(GRAPH_APP_ROLES)


def test_graph_emulator_accepts_the_demo_app_token(stack: RunningStack) -> None:
    assert stack.env.graph_url is not None and stack.env.graph_admin_url == f"{stack.env.graph_url}/_admin"
    token = _graph_app_tokens(stack.env)[0]
    response = stack.http().get(f"{stack.env.graph_url}/v1.0/users", params={"$top": "5"},
                                headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert len(response.json()["value"]) == 5
    assert stack.http().get(f"{stack.env.graph_url}/v1.0/users").status_code == 401


# ---- lifecycle: own stack processes -----------------------------------------------------------------------------


def _start(root: Path, *extra: str) -> StackProcess:
    return start_stack(root / "state", root / "devstack.env", *STACK_ARGS, *extra)


def _users_delta_link(env: StackEnv) -> str:
    http = ca_session(env.ca_bundle)
    headers = {"Authorization": f"Bearer {_graph_app_tokens(env)[0]}"}
    page = http.get(f"{env.graph_url}/v1.0/users/delta", headers=headers).json()
    while "@odata.nextLink" in page:
        page = http.get(page["@odata.nextLink"], headers=headers).json()
    link: str = page["@odata.deltaLink"]
    return link


def _no_survivors(proc: StackProcess) -> None:
    pids = [proc.pid, *proc.refresh_descendants()]
    assert len(pids) >= 2  # the stack and at least Azurite
    survivors = proc.stop()
    assert survivors == []
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid
    assert not proc.env_file.exists()  # the readiness signal is withdrawn on a clean stop


def test_state_dir_survives_restart_and_nothing_is_orphaned(tmp_path: Path) -> None:
    first = _start(tmp_path)
    try:
        env1 = first.env
        ca1 = Path(env1.ca_bundle).read_bytes()
        vault_token = workload_credential(env1).get_token("https://vault.azure.net/.default").token
        delta_link = _users_delta_link(env1)
        container = blob_service(env1).get_container_client("persisted")
        container.create_container()
        container.upload_blob("kept.txt", b"still here")
    finally:
        _no_survivors(first)

    second = _start(tmp_path)
    try:
        with pytest.raises(StackStartError, match="is in use by pid"):
            start_stack(tmp_path / "state", tmp_path / "other.env", *STACK_ARGS)
        env2 = second.env
        assert env2.tenant_id == env1.tenant_id
        assert env2.graph_app == env1.graph_app and env2.workload_identity == env1.workload_identity
        assert Path(env2.ca_bundle).read_bytes() == ca1
        assert (env2.authority_host, env2.key_vault_url, env2.blob_account_url, env2.graph_url) == (
            env1.authority_host, env1.key_vault_url, env1.blob_account_url, env1.graph_url)
        # A token issued before the restart still verifies (signing key persisted).
        response = ca_session(env2.ca_bundle).get(
            f"{env2.key_vault_url}/secrets/graph-client-secret/", params={"api-version": "7.6"},
            headers={"Authorization": f"Bearer {vault_token}"})
        assert response.status_code == 200, response.text
        assert blob_service(env2).get_container_client("persisted").download_blob("kept.txt").readall() == b"still here"
        # A delta link handed out before the restart still answers (same port, Graph state in the state dir).
        graph_token = _graph_app_tokens(env2)[0]
        after = ca_session(env2.ca_bundle).get(delta_link, headers={"Authorization": f"Bearer {graph_token}"})
        assert after.status_code == 200, after.text
        assert after.json()["value"] == [] and "@odata.deltaLink" in after.json()
        versions = SecretClient(env2.key_vault_url, workload_credential(env2), verify_challenge_resource=False,
                                connection_verify=env2.ca_bundle)
        assert versions.get_secret("graph-client-secret").value  # one set of secrets, not re-created
        stats = ca_session(env2.ca_bundle).get(f"{env2.entra_admin_url}/apps/{env2.graph_app.client_id}").json()
        assert len(stats["secrets"]) == 1 and len(stats["certificates"]) == 1
    finally:
        _no_survivors(second)
    with pytest.raises(StackStartError, match="pass the same --seed"):
        _start(tmp_path, "--seed", "8")  # the state dir belongs to the first tenant


def test_azurite_restart_keeps_blobs_and_port(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--token-lifetime", "900", "--throttle", "0.5")
    try:
        env = proc.env
        assert workload_credential(env).get_token("https://storage.azure.com/.default").expires_on - time.time() < 901
        graph_settings = ca_session(env.ca_bundle).get(f"{env.graph_admin_url}/settings").json()
        assert graph_settings["throttle"]["enabled"] is True and graph_settings["throttle"]["scale"] == 0.5
        container = blob_service(env).get_container_client("outage")
        container.create_container()
        container.upload_blob("a.txt", b"a")
        admin = ca_session(env.ca_bundle)
        stopped = admin.post(f"{env.entra_admin_url}/stack/azurite/stop").json()
        assert stopped["running"] is False
        assert not psutil.pid_exists(env.azurite_pid or -1) or psutil.Process(env.azurite_pid).status() == "zombie"
        started = admin.post(f"{env.entra_admin_url}/stack/azurite/start").json()
        assert started["running"] is True and started["pid"] != env.azurite_pid
        assert blob_service(env).get_container_client("outage").download_blob("a.txt").readall() == b"a"
        proc.refresh_descendants()
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C on the stack process alone must also stop Azurite
        assert proc.process.wait(30) == 0
    finally:
        assert proc.stop() == []


def test_azurite_dies_with_a_killed_stack(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    azurite_pid = proc.env.azurite_pid
    assert azurite_pid is not None
    try:
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup code runs: only PR_SET_PDEATHSIG can save us
        proc.process.wait(10)
        deadline = time.monotonic() + 15
        while psutil.pid_exists(azurite_pid) and psutil.Process(azurite_pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "Azurite outlived its SIGKILLed parent"
            time.sleep(0.1)
    finally:
        assert proc.stop() == []
