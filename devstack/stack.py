"""Wires the whole local stack together: CA, Entra, Key Vault, Graph (all in this event loop), Azurite (child).

Order matters: certificates and keys first (everything trusts them), then the directory (tenant, demo app,
workload identity), the vault contents, the servers, Azurite, and the env file last as the "ready" signal.
With a state dir, every piece reloads what it saved and servers try to rebind their previous ports, so absolute
links handed out before a restart (Graph nextLink/deltaLink, secret ids) keep working after it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from devstack import ca
from devstack.azurite import Azurite, AzuritePorts
from devstack.entra import create_entra_app
from devstack.env import GraphAppInfo, StackEnv, WorkloadIdentity
from devstack.graph import GraphSettings, ThrottleSettings, create_app
from devstack.keyvault import VaultSettings, VaultState, create_keyvault_app
from devstack.registry import Registry
from devstack.tenant import Tenant, TenantSizes, build_tenant
from devstack.tokens import KeySet, SigningKey, TokenVerifier, self_signed

# Application permissions the 22 streams need (graph-api.md section 7); all granted to the demo app.
GRAPH_APP_ROLES = (
    "User.Read.All", "Group.Read.All", "GroupMember.Read.All", "Application.Read.All", "Team.ReadBasic.All",
    "Channel.ReadBasic.All", "TeamMember.Read.All", "Chat.Read.All", "Mail.Read", "Calendars.Read",
    "Contacts.Read", "Files.Read.All", "AuditLog.Read.All", "Directory.Read.All", "Policy.Read.All",
    "RoleManagement.Read.Directory",
)  # fmt: skip
CLIENT_SECRET_NAME = "graph-client-secret"
CERTIFICATE_SECRET_NAME = "graph-client-certificate"
WORKLOAD_VAULT_ROLE = "Key Vault Secrets User"

Throttle = Literal["on", "off"] | float


@dataclass(slots=True)
class StackOptions:
    state_dir: Path | None = None
    seed: int = 1
    sizes: TenantSizes = field(default_factory=TenantSizes.demo)
    throttle: Throttle = "on"
    token_lifetime_seconds: int | None = None
    graph: bool = True
    azurite: bool = True


def make_certificate(common_name: str) -> tuple[str, str]:
    """(private key PEM, certificate PEM) for an app credential, like `New-SelfSignedCertificate` would give."""
    key, cert = self_signed(common_name, days=365)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _fallback_tenant_id(seed: int) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(f"devstack-tenant-{seed}".encode()).digest()[:16], version=4))


def throttle_settings(throttle: Throttle) -> ThrottleSettings:
    if throttle == "off":
        return ThrottleSettings(enabled=False)
    if throttle == "on":
        return ThrottleSettings(enabled=True)
    return ThrottleSettings(enabled=True, scale=float(throttle))


class _Server:
    """One aiohttp app on 127.0.0.1 over TLS; port 0 = ephemeral, otherwise try that port first."""

    def __init__(self, app: web.Application) -> None:
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port = 0

    async def start(self, certs: ca.CertFiles, port: int = 0) -> int:
        await self.runner.setup()
        ssl_ctx = certs.server_ssl_context()
        try:
            await web.TCPSite(self.runner, "127.0.0.1", port, ssl_context=ssl_ctx, reuse_address=True).start()
        except OSError:
            if port == 0:
                raise
            print(f"devstack: port {port} is taken; links issued before the restart will not resolve",
                  file=sys.stderr)
            await web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ssl_ctx).start()
        address = self.runner.addresses[0]
        self.port = int(address[1])
        return self.port

    async def stop(self) -> None:
        await self.runner.cleanup()


class Stack:
    """`async with Stack(options) as env:` runs everything until the block exits."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self._temp: Path | None = None
        self.root = Path()
        self.azurite: Azurite | None = None
        self._servers: list[_Server] = []
        self.registry: Registry | None = None
        self.vault: VaultState | None = None
        self.env: StackEnv | None = None
        self._tenant_identity: dict[str, Any] | None = None
        self._lock: IO[str] | None = None

    async def __aenter__(self) -> StackEnv:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _path(self, *parts: str) -> Path | None:
        """Where a component persists, or None when the stack is ephemeral (no --state-dir)."""
        return self.root.joinpath(*parts) if self.options.state_dir is not None else None

    async def start(self) -> StackEnv:
        opts = self.options
        if opts.state_dir is not None:
            self.root = opts.state_dir.resolve()
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock_state_dir()
        else:
            self._temp = self.root = Path(tempfile.mkdtemp(prefix="devstack-"))
        saved = self._load_saved()
        certs = ca.load_or_create(self.root / "certs")
        keys = KeySet([SigningKey.load_or_create(self._path("entra", "signing-key.pem"))])
        self.registry = registry = Registry(self._path("entra", "registry.json"))
        if opts.token_lifetime_seconds is not None:
            registry.token_lifetime_seconds = opts.token_lifetime_seconds
            registry.save()

        tenant = self._build_tenant(saved)
        tenant_id: str = tenant.tenant_id if tenant is not None else _fallback_tenant_id(opts.seed)
        domain: str = tenant.default_domain if tenant is not None else "devstack.onmicrosoft.com"
        if registry.resolve_tenant(tenant_id) is None:
            registry.add_tenant(tenant_id, [domain])

        boot = self._bootstrap(registry, tenant_id, saved)
        self.vault = vault = VaultState(self._path("keyvault", "vault.json"))
        self._fill_vault(vault, registry, tenant_id, boot)

        ports = saved.get("ports", {})
        entra_app = create_entra_app(registry, keys)
        entra_app.router.add_post("/_admin/stack/azurite/{action}", self._azurite_control)
        entra = _Server(entra_app)
        self._servers.append(entra)
        entra_port = await entra.start(certs, ports.get("entra", 0))
        authority = f"https://127.0.0.1:{entra_port}"

        def resolve(client_id: str) -> str | None:
            app = registry.apps.get(client_id)
            sp = app.principals.get(tenant_id) if app else None
            return sp.object_id if sp else None

        kv_settings = VaultSettings(tenant_id=tenant_id, authority_url=authority)
        kv = _Server(create_keyvault_app(vault, kv_settings, TokenVerifier(keys, tenants=[tenant_id]), resolve))
        self._servers.append(kv)
        kv_port = await kv.start(certs, ports.get("keyvault", 0))

        graph_port: int | None = None
        if tenant is not None:
            graph_settings = GraphSettings(
                state_dir=self._path("graph"), authority_url=authority, throttle=throttle_settings(opts.throttle)
            )
            graph_app = create_app(
                tenant=tenant, verifier=TokenVerifier(keys, tenants=[tenant_id]), settings=graph_settings
            )
            graph = _Server(graph_app)
            self._servers.append(graph)
            graph_port = await graph.start(certs, ports.get("graph", 0))

        azurite_ports = AzuritePorts(0, 0, 0)
        if opts.azurite:
            wanted = ports.get("azurite")
            self.azurite = Azurite(self.root / "azurite", certs, ports=AzuritePorts(**wanted) if wanted else None)
            azurite_ports = await self.azurite.start()

        self._save(boot, {"entra": entra_port, "keyvault": kv_port, "graph": graph_port,
                          "azurite": {"blob": azurite_ports.blob, "queue": azurite_ports.queue,
                                      "table": azurite_ports.table}})
        graph_url = f"https://127.0.0.1:{graph_port}" if graph_port else None
        self.env = StackEnv(
            tenant_id=tenant_id,
            ca_bundle=str(certs.ca_bundle),
            authority_host=authority,
            graph_url=graph_url,
            graph_admin_url=f"{graph_url}/_admin" if graph_url else None,
            key_vault_url=f"https://127.0.0.1:{kv_port}",
            blob_account_url=azurite_ports.blob_url(),
            storage_connection_string=azurite_ports.connection_string(),
            graph_app=GraphAppInfo(boot["graph_app_id"], CLIENT_SECRET_NAME, CERTIFICATE_SECRET_NAME,
                                   boot["certificate_thumbprint"]),
            workload_identity=WorkloadIdentity(boot["workload_client_id"], boot["workload_client_secret"]),
            pid=os.getpid(),
            entra_admin_url=f"{authority}/_admin",
            key_vault_admin_url=f"https://127.0.0.1:{kv_port}/_admin",
            queue_account_url=f"https://127.0.0.1:{azurite_ports.queue}/devstoreaccount1",
            table_account_url=f"https://127.0.0.1:{azurite_ports.table}/devstoreaccount1",
            azurite_pid=self.azurite.pid if self.azurite else None,
            state_dir=str(self.root),
        )
        return self.env

    def _build_tenant(self, saved: dict[str, Any]) -> Tenant | None:
        """The demo tenant, unless --no-graph. A state dir belongs to one (seed, sizes): delta tokens and
        registrations refer to that tenant, so a mismatch is refused rather than silently mixed."""
        if not self.options.graph:
            return None
        identity = {"seed": self.options.seed, "sizes": self.options.sizes.to_json()}
        previous = saved.get("tenant")
        if previous is not None and previous != identity:
            raise SystemExit(
                f"error: --state-dir {self.root} holds a tenant built with seed {previous['seed']} and other sizes; "
                "pass the same --seed/sizes as before or use a new --state-dir"
            )
        self._tenant_identity = identity
        return build_tenant(self.options.seed, self.options.sizes, self._path("tenant"))

    def _load_saved(self) -> dict[str, Any]:
        path = self.root / "stack.json"
        if self.options.state_dir is None or not path.exists():
            return {}
        data = json.loads(path.read_text("utf-8"))
        return data if isinstance(data, dict) else {}

    def _save(self, boot: dict[str, str], ports: dict[str, Any]) -> None:
        if self.options.state_dir is None:
            return
        path = self.root / "stack.json"
        tmp = path.with_name("stack.json.tmp")
        data = {"bootstrap": boot, "ports": ports, "tenant": self._tenant_identity}
        tmp.write_text(json.dumps(data, indent=1), "utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)

    def _bootstrap(self, registry: Registry, tenant_id: str, saved: dict[str, Any]) -> dict[str, str]:
        """Registers the demo Graph app and the workload identity once; reuses them from the state dir after."""
        boot: dict[str, str] = dict(saved.get("bootstrap", {}))
        graph_app = registry.apps.get(boot.get("graph_app_id", ""))
        workload = registry.apps.get(boot.get("workload_client_id", ""))
        if graph_app is None or "graph_key_pem" not in boot:
            graph_app = registry.register_app(display_name="m365-lake (demo)", home_tenant=tenant_id,
                                              roles=list(GRAPH_APP_ROLES))
            secret = registry.add_secret(graph_app.client_id)
            key_pem, cert_pem = make_certificate("m365-lake-graph-app")
            cert = registry.add_certificate(graph_app.client_id, cert_pem)
            boot.update(graph_app_id=graph_app.client_id, graph_secret=secret.value, graph_key_pem=key_pem,
                        graph_cert_pem=cert_pem, certificate_thumbprint=cert.thumbprint)
        else:
            registry.grant(graph_app.client_id, tenant_id, list(GRAPH_APP_ROLES))
        if workload is None:
            workload = registry.register_app(display_name="m365-lake workload identity", home_tenant=tenant_id)
            secret = registry.add_secret(workload.client_id)
            boot.update(workload_client_id=workload.client_id, workload_client_secret=secret.value)
        elif tenant_id not in workload.principals:
            registry.grant(workload.client_id, tenant_id, [])
        return boot

    @staticmethod
    def _fill_vault(vault: VaultState, registry: Registry, tenant_id: str, boot: dict[str, str]) -> None:
        workload_oid = registry.apps[boot["workload_client_id"]].principals[tenant_id].object_id
        if not vault.allowed(workload_oid, "getSecret/action"):
            vault.assign(workload_oid, WORKLOAD_VAULT_ROLE)
        secret = vault.get(CLIENT_SECRET_NAME)
        latest = secret.latest() if secret else None
        if latest is None or latest.value != boot["graph_secret"]:
            vault.set(CLIENT_SECRET_NAME, boot["graph_secret"])
        pem = boot["graph_key_pem"] + boot["graph_cert_pem"]
        cert_secret = vault.get(CERTIFICATE_SECRET_NAME)
        latest = cert_secret.latest() if cert_secret else None
        if latest is None or latest.value != pem:
            vault.set(CERTIFICATE_SECRET_NAME, pem, content_type="application/x-pem-file")

    def _lock_state_dir(self) -> None:
        """Two stacks on one state dir would fight over ports and files; the second one is refused clearly."""
        handle = (self.root / ".lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise SystemExit(
                f"error: --state-dir {self.root} is in use by pid {owner}; stop it or use another dir"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    async def stop(self) -> None:
        """Idempotent; Azurite first (the only child process), then the servers, then a temp state dir."""
        if self.azurite is not None:
            await self.azurite.stop()
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):
                await server.stop()
        self._servers.clear()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    async def _azurite_control(self, request: web.Request) -> web.Response:
        """`POST /_admin/stack/azurite/{stop|kill|start|restart}` on the Entra port: storage outages for fault tests.
        Azurite comes back on the same ports and location, so clients and blobs survive."""
        action = request.match_info["action"]
        if self.azurite is None:
            return web.json_response({"error": "Azurite is not part of this stack"}, status=409)
        if action == "stop":
            await self.azurite.stop()
        elif action == "kill":
            await self.azurite.kill()
        elif action in {"start", "restart"}:
            await (self.azurite.start() if action == "start" and self.azurite.pid is None else self.azurite.restart())
        else:
            return web.json_response({"error": f"action: {action!r}; use stop, kill, start or restart"}, status=400)
        return web.json_response({"running": self.azurite.pid is not None, "pid": self.azurite.pid})
