"""The JSON environment file `python -m devstack up` writes last (its appearance means "ready").

Typed both ways so the stack, the local runner and the tests agree on one shape (see ARCHITECTURE.md).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_ENV_FILE = Path(".devstack") / "devstack.env"


@dataclass(frozen=True, slots=True)
class GraphAppInfo:
    client_id: str
    client_secret_name: str
    certificate_secret_name: str
    certificate_thumbprint: str


@dataclass(frozen=True, slots=True)
class WorkloadIdentity:
    """Stands in for the function app's managed identity (reads the vault, writes Blob)."""

    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class StackEnv:
    tenant_id: str
    ca_bundle: str
    authority_host: str
    graph_url: str | None
    graph_admin_url: str | None
    key_vault_url: str
    blob_account_url: str
    storage_connection_string: str
    graph_app: GraphAppInfo
    workload_identity: WorkloadIdentity
    pid: int
    entra_admin_url: str
    key_vault_admin_url: str
    queue_account_url: str
    table_account_url: str
    azurite_pid: int | None
    state_dir: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackEnv:
        values = dict(data)
        try:
            values["graph_app"] = GraphAppInfo(**values["graph_app"])
            values["workload_identity"] = WorkloadIdentity(**values["workload_identity"])
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"devstack env file: unexpected shape ({exc}); restart `python -m devstack up`") from exc

    @classmethod
    def load(cls, path: Path) -> StackEnv:
        return cls.from_json(json.loads(path.read_text("utf-8")))

    def write(self, path: Path) -> None:
        """Atomic (rename), so a reader never sees half a file; mode 0600 because it holds a client secret."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", "utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)

    def workload_environment(self) -> dict[str, str]:
        """What the local runner exports so `EnvironmentCredential` finds the workload identity."""
        return {
            "AZURE_CLIENT_ID": self.workload_identity.client_id,
            "AZURE_CLIENT_SECRET": self.workload_identity.client_secret,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_AUTHORITY_HOST": self.authority_host,
        }
