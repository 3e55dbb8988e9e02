"""Vault state without a server: versions, soft delete, RBAC roles, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.keyvault import store as st


def test_versions_latest_and_case_insensitive_names() -> None:
    vault = st.VaultState()
    first = vault.set("Graph-Secret", "a")
    second = vault.set("graph-secret", "b")
    secret = vault.get("GRAPH-SECRET")
    assert secret is not None and secret.name == "Graph-Secret"
    assert secret.latest() is second and secret.version(first.version) is first
    assert len(first.version) == 32 and first.version != second.version


def test_soft_delete_recover_purge() -> None:
    vault = st.VaultState()
    vault.set("s", "v")
    deleted = vault.delete("s")
    assert deleted is not None and deleted.deleted_date is not None and vault.get("s") is None
    assert vault.recover("s") is not None and vault.get("s") is not None
    vault.delete("s")
    assert vault.purge("s") and not vault.purge("s")


def test_roles_grant_data_actions() -> None:
    vault = st.VaultState()
    vault.assign("user", "Key Vault Secrets User")
    vault.assign("reader", "Key Vault Reader")
    vault.assign("officer", "Key Vault Secrets Officer")
    assert vault.allowed("user", st.GET_SECRET) and not vault.allowed("user", st.SET_SECRET)
    assert vault.allowed("reader", st.READ_METADATA) and not vault.allowed("reader", st.GET_SECRET)
    assert all(vault.allowed("officer", a) for a in (st.GET_SECRET, st.SET_SECRET, st.DELETE, st.PURGE))
    assert not vault.allowed("nobody", st.READ_METADATA)
    with pytest.raises(st.VaultError, match="role"):
        vault.assign("x", "Owner")
    vault.unassign("user", "Key Vault Secrets User")
    assert not vault.allowed("user", st.GET_SECRET)


def test_state_persists(tmp_path: Path) -> None:
    path = tmp_path / "vault.json"
    vault = st.VaultState(path)
    version = vault.set("s", "v", content_type="text/plain", tags={"k": "v"})
    vault.assign("p", "Key Vault Secrets User")
    vault.set("gone", "x")
    vault.delete("gone")
    again = st.VaultState(path)
    secret = again.get("s")
    assert secret is not None and secret.latest() == version
    assert again.allowed("p", st.GET_SECRET)
    assert "gone" in again.deleted
    assert path.stat().st_mode & 0o077 == 0
