"""Session fixtures: one real local stack (`python -m devstack up` as a subprocess) shared by the whole run.

This machine exports REQUESTS_CA_BUNDLE / SSL_CERT_FILE / CURL_CA_BUNDLE; every client here is given the
stack's CA explicitly (requests: verify=ca + trust_env=False; azure-core: connection_verify=ca; aiohttp: an
ssl context) so those variables can never decide what is trusted.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from devstack.env import StackEnv
from devstack.process import StackProcess, start_stack

# Small tenant and no throttling by default; tests switch throttling on through the Graph admin API.
STACK_ARGS = ("--users", "30", "--throttle", "off", "--seed", "7")


def ca_session(ca_bundle: str | Path) -> requests.Session:
    """A requests session that trusts only the stack's CA and ignores *_CA_BUNDLE / proxy variables."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_bundle)
    return session


class AdminClient:
    """JSON calls to the emulators' `/_admin` APIs (Entra, Key Vault, Graph)."""

    def __init__(self, env: StackEnv) -> None:
        self.env = env
        self.http = ca_session(env.ca_bundle)

    def _call(self, base: str | None, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        if base is None:
            raise RuntimeError("this service is not running in the stack")
        response = self.http.request(method, base + path, json=body, timeout=30)
        if expect is not None and response.status_code != expect:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        if response.status_code >= 400 and expect is None:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def entra(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        return self._call(self.env.entra_admin_url, method, path, body, expect)

    def keyvault(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        return self._call(self.env.key_vault_admin_url, method, path, body, expect)

    def graph(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        return self._call(self.env.graph_admin_url, method, path, body, expect)

    def register_app(self, *, roles: list[str] | None = None, secret: bool = True, **extra: Any) -> dict[str, Any]:
        """A fresh app registration in the demo tenant (tests isolate themselves with their own apps)."""
        body = {"display_name": "test app", "home_tenant": self.env.tenant_id, "roles": roles or [], "secret": secret}
        result: dict[str, Any] = self.entra("POST", "/apps", {**body, **extra}, expect=201)
        return result


@dataclass(frozen=True, slots=True)
class RunningStack:
    """The env values plus helpers; `process` exposes pids for the no-orphans checks."""

    env: StackEnv
    process: StackProcess
    admin: AdminClient

    @property
    def ca(self) -> Path:
        return Path(self.env.ca_bundle)

    def http(self) -> requests.Session:
        return ca_session(self.env.ca_bundle)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.env.ca_bundle)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    root = tmp_path_factory.mktemp("devstack")
    proc = start_stack(root / "state", root / "devstack.env", *STACK_ARGS)
    try:
        yield RunningStack(proc.env, proc, AdminClient(proc.env))
    finally:
        survivors = proc.stop()
        if survivors:
            raise AssertionError(f"devstack teardown left processes running: {survivors}\n{proc.log_tail()}")


@pytest.fixture()
def http(stack: RunningStack) -> Iterator[requests.Session]:
    """requests session trusting the stack's CA (and nothing from the environment)."""
    with stack.http() as session:
        yield session


@pytest.fixture()
async def aiohttp_session(stack: RunningStack) -> AsyncIterator[aiohttp.ClientSession]:
    """aiohttp session trusting the stack's CA; `trust_env=False` so proxy variables are ignored too."""
    connector = aiohttp.TCPConnector(ssl=stack.ssl_context())
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        yield session
