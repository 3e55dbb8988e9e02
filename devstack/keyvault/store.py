"""A vault's secrets (every version), soft-deleted secrets and RBAC role assignments; pure state + JSON file.

Key Vault keeps each `set` as a new immutable version and "latest" is the newest enabled one; deletion is soft
(recoverable) by default. Authorization is Azure RBAC: a principal (token `oid`) holds roles on the vault and
each operation needs one data action.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NAME_PATTERN = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
RECOVERABLE_DAYS = 90

# Data actions (Microsoft.KeyVault/vaults/secrets/...) per built-in role.
GET_SECRET = "getSecret/action"
READ_METADATA = "readMetadata/action"
SET_SECRET = "setSecret/action"
WRITE_METADATA = "writeMetadata/action"
DELETE = "delete"
RECOVER = "recover/action"
PURGE = "deletedSecrets/purge/action"
READ_DELETED = "deletedSecrets/read/action"
_ALL = frozenset({GET_SECRET, READ_METADATA, SET_SECRET, WRITE_METADATA, DELETE, RECOVER, PURGE, READ_DELETED})
ROLES: dict[str, frozenset[str]] = {
    "Key Vault Secrets User": frozenset({GET_SECRET, READ_METADATA}),
    "Key Vault Secrets Officer": _ALL,
    "Key Vault Administrator": _ALL,
    "Key Vault Reader": frozenset({READ_METADATA}),
}


class VaultError(ValueError):
    """Bad admin input; names the field and the fix."""


@dataclass(slots=True)
class SecretVersion:
    version: str
    value: str
    created: int
    updated: int
    enabled: bool = True
    content_type: str | None = None
    tags: dict[str, str] | None = None
    not_before: int | None = None
    expires: int | None = None


@dataclass(slots=True)
class Secret:
    name: str
    versions: list[SecretVersion] = field(default_factory=list)
    deleted_date: int | None = None

    def latest(self) -> SecretVersion | None:
        """Newest version by creation; Key Vault returns it even when disabled (then without a value)."""
        return self.versions[-1] if self.versions else None

    def version(self, version: str) -> SecretVersion | None:
        return next((v for v in self.versions if v.version == version), None)


class VaultState:
    """All secrets and role assignments of one vault; saved after every change when a path is given."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self.secrets: dict[str, Secret] = {}  # lower-cased name -> live secret (names are case-insensitive)
        self.deleted: dict[str, Secret] = {}
        self.assignments: dict[str, set[str]] = {}  # principal object id -> role names
        if path is not None and path.exists():
            self._load(json.loads(path.read_text("utf-8")))

    # ---- secrets -------------------------------------------------------------------------------------------
    def get(self, name: str) -> Secret | None:
        return self.secrets.get(name.lower())

    def set(
        self,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        enabled: bool = True,
        not_before: int | None = None,
        expires: int | None = None,
    ) -> SecretVersion:
        now = int(time.time())
        secret = self.secrets.get(name.lower())
        if secret is None:
            secret = self.secrets[name.lower()] = Secret(name)
        version = SecretVersion(uuid.uuid4().hex, value, now, now, enabled, content_type, tags, not_before, expires)
        secret.versions.append(version)
        self.save()
        return version

    def update(self, version: SecretVersion, attributes: dict[str, Any]) -> None:
        for key, attr in (("content_type", "content_type"), ("tags", "tags"), ("enabled", "enabled"),
                          ("not_before", "not_before"), ("expires", "expires")):
            if key in attributes:
                setattr(version, attr, attributes[key])
        version.updated = int(time.time())
        self.save()

    def delete(self, name: str) -> Secret | None:
        secret = self.secrets.pop(name.lower(), None)
        if secret is not None:
            secret.deleted_date = int(time.time())
            self.deleted[name.lower()] = secret
            self.save()
        return secret

    def recover(self, name: str) -> Secret | None:
        secret = self.deleted.pop(name.lower(), None)
        if secret is not None:
            secret.deleted_date = None
            self.secrets[name.lower()] = secret
            self.save()
        return secret

    def purge(self, name: str) -> bool:
        found = self.deleted.pop(name.lower(), None) is not None
        if found:
            self.save()
        return found

    def live_names(self) -> list[Secret]:
        return [self.secrets[k] for k in sorted(self.secrets)]

    # ---- RBAC ----------------------------------------------------------------------------------------------
    def assign(self, principal_id: str, role: str) -> None:
        if role not in ROLES:
            raise VaultError(f"role: unknown role {role!r}; expected one of {sorted(ROLES)}")
        self.assignments.setdefault(principal_id, set()).add(role)
        self.save()

    def unassign(self, principal_id: str, role: str) -> None:
        roles = self.assignments.get(principal_id, set())
        if role not in roles:
            raise VaultError(f"role: principal {principal_id} does not hold {role!r}")
        roles.discard(role)
        self.save()

    def allowed(self, principal_id: str, action: str) -> bool:
        return any(action in ROLES[r] for r in self.assignments.get(principal_id, ()))

    # ---- persistence ---------------------------------------------------------------------------------------
    def save(self) -> None:
        if self._path is None:
            return
        data = {
            "secrets": [asdict(s) for s in self.secrets.values()],
            "deleted": [asdict(s) for s in self.deleted.values()],
            "assignments": {k: sorted(v) for k, v in self.assignments.items()},
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps(data), "utf-8")
        tmp.chmod(0o600)
        tmp.replace(self._path)

    def _load(self, data: dict[str, Any]) -> None:
        def secret(raw: dict[str, Any]) -> Secret:
            versions = [SecretVersion(**v) for v in raw["versions"]]
            return Secret(raw["name"], versions, raw.get("deleted_date"))

        self.secrets = {s["name"].lower(): secret(s) for s in data.get("secrets", [])}
        self.deleted = {s["name"].lower(): secret(s) for s in data.get("deleted", [])}
        self.assignments = {k: set(v) for k, v in data.get("assignments", {}).items()}
