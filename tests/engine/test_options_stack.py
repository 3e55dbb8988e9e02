"""Run options against the emulator: user scope, date window, column selection, managed identity, manifest,
and a retried partition overwriting its own blob."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest

from shared.config import load_settings
from shared.contracts import RunInfo
from shared.runtime import close_engines, get_engine
from shared.sync import list_parents, read_parent_chunk, sync_partition, write_manifest
from tests.conftest import RunningStack
from tests.engine.conftest import engine_environ
from tests.engine.oracle import Oracle
from tests.engine.runner import read_records
from tests.engine.test_sync_stack import make_run


@pytest.fixture(scope="module")
def oracle(stack: RunningStack) -> Oracle:
    if not stack.env.graph_url:
        pytest.skip("the Graph emulator is not part of this stack")
    return Oracle(stack)


async def listed_users(stack: RunningStack, **settings_env: str) -> list[str]:
    settings = load_settings(engine_environ(stack, **settings_env))
    try:
        listing = await list_parents(settings, make_run(stack), "users")
        ids: list[str] = []
        for chunk in listing["chunks"]:
            ids += await read_parent_chunk(settings, chunk)
    finally:
        await close_engines()
    assert len(ids) == listing["count"]
    return ids


async def test_user_scope_by_filter_and_by_groups(stack: RunningStack, workload_env: None, oracle: Oracle) -> None:
    everyone = oracle.ids("/users")
    flt = "startswith(displayName,'A') or userType eq 'Guest'"
    by_filter = oracle.ids("/users?$filter=" + quote(flt))
    assert 0 < len(by_filter) < len(everyone)
    assert await listed_users(stack, SYNC_USER_FILTER=flt) == by_filter

    groups = oracle.ids("/groups")[:2]
    members = {r["id"] for g in groups for r in oracle.items(f"/groups/{g}/transitiveMembers")
               if r.get("@odata.type") == "#microsoft.graph.user"}
    assert members and len(members) < len(everyone)
    scoped = await listed_users(stack, SYNC_USER_GROUPS=",".join(groups))
    assert sorted(scoped) == sorted(members) and len(scoped) == len(set(scoped))
    both = await listed_users(stack, SYNC_USER_GROUPS=",".join(groups), SYNC_USER_FILTER=flt)
    assert set(both) == members & set(by_filter)
    assert await listed_users(stack) == everyone


async def test_run_overrides_scope_the_listing(stack: RunningStack, workload_env: None, oracle: Oracle) -> None:
    settings = load_settings(engine_environ(stack))
    run: RunInfo = {**make_run(stack), "overrides": {"user_filter": "userType eq 'Guest'"}}
    try:
        listing = await list_parents(settings, run, "users")
    finally:
        await close_engines()
    assert listing["count"] == len(oracle.ids("/users?$filter=" + quote("userType eq 'Guest'"))) > 0


async def test_date_window_keeps_only_records_inside(stack: RunningStack, workload_env: None,
                                                     oracle: Oracle) -> None:
    all_audits = list(oracle.items("/auditLogs/directoryAudits"))
    stamps = sorted(r["activityDateTime"] for r in all_audits)
    start, end = stamps[len(stamps) // 4], stamps[3 * len(stamps) // 4]
    settings = load_settings(engine_environ(stack, SYNC_START_TIME=start, SYNC_END_TIME=end))
    try:
        result = await sync_partition(settings, make_run(stack), "audit_logs_directory", None)
        assert result["status"] == "ok" and result["blob_path"]
        got = await read_records(settings, result["blob_path"])
    finally:
        await close_engines()

    def when(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    inside = {r["id"] for r in all_audits if when(start) <= when(r["activityDateTime"]) < when(end)}
    assert {r["id"] for r in got} == inside and 0 < len(inside) < len(all_audits)


async def test_select_keeps_the_key_and_only_chosen_columns(stack: RunningStack, workload_env: None) -> None:
    settings = load_settings(engine_environ(stack, SYNC_STREAMS_CONFIG='{"users": {"select": ["displayName"]}}',
                                            SYNC_SNAKE_CASE="true"))
    try:
        result = await sync_partition(settings, make_run(stack), "users", None)
        assert result["blob_path"]
        rows = await read_records(settings, result["blob_path"])
    finally:
        await close_engines()
    assert rows and all("_extracted_at" in r for r in rows)
    # Graph's columns and the tenant: exactly these (engine bookkeeping columns start with "_").
    assert all({k for k in r if not k.startswith("_")} == {"id", "display_name", "tenant_id"} for r in rows)


async def test_managed_identity_needs_no_secret(stack: RunningStack, workload_env: None, oracle: Oracle) -> None:
    """The function's own identity holds Graph app roles: no Key Vault, no client id setting."""
    identity = stack.admin.register_app(roles=["User.Read.All"], secret=True, display_name="function identity")
    saved = {k: os.environ[k] for k in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")}
    os.environ["AZURE_CLIENT_ID"] = identity["client_id"]
    os.environ["AZURE_CLIENT_SECRET"] = identity["secret"]["value"]
    environ = engine_environ(stack, GRAPH_CREDENTIAL_TYPE="managed_identity", AZURE_CLIENT_ID=identity["client_id"])
    del environ["GRAPH_CLIENT_ID"], environ["KEY_VAULT_URL"]
    try:
        settings = load_settings(environ)
        result = await sync_partition(settings, make_run(stack), "users", None)
        engine = await get_engine(settings)
        assert engine.secrets is None
    finally:
        await close_engines()
        os.environ.update(saved)
    assert result["status"] == "ok" and result["records"] == len(oracle.ids("/users"))


async def test_retried_partition_overwrites_its_blob(stack: RunningStack, workload_env: None) -> None:
    settings = load_settings(engine_environ(stack))
    run = make_run(stack)
    try:
        # A stream without delta: every attempt is a full copy, so the second must replace the first exactly.
        first = await sync_partition(settings, run, "directory_role_templates", None)
        second = await sync_partition(settings, run, "directory_role_templates", None)
        assert first["blob_path"] == second["blob_path"] and second["blob_path"]
        rows = await read_records(settings, second["blob_path"])
        engine = await get_engine(settings)
        folder = second["blob_path"].rsplit("/", 1)[0]
        names = [b.name async for b in engine.blob_service.get_container_client("engine-tests")
                 .list_blobs(name_starts_with=folder + "/")]
    finally:
        await close_engines()
    assert len(rows) == second["records"] == first["records"]
    assert names == [second["blob_path"]]


async def test_manifest_and_success_marker(stack: RunningStack, workload_env: None) -> None:
    settings = load_settings(engine_environ(stack))
    run = make_run(stack)
    try:
        ok = await sync_partition(settings, run, "directory_roles", None)
        summary = await write_manifest(settings, run, [ok])
        engine = await get_engine(settings)
        folder = summary["manifest_path"].rsplit("/", 1)[0]
        marker = engine.blob(f"{folder}/_SUCCESS")
        assert summary["status"] == "succeeded" and await marker.exists()
        failed: Any = {**ok, "status": "failed", "error_code": "X", "records": 0}
        again = await write_manifest(settings, run, [ok, failed])
        assert again["status"] == "failed" and again["failed"] == 1 and not again["success_marker"]
        assert not await marker.exists(), "a failed re-run must remove the earlier success marker"
        manifest = await (await engine.blob(again["manifest_path"]).download_blob()).readall()
    finally:
        await close_engines()
    assert b'"failed": 1' in manifest or b'"failed":1' in manifest
    assert summary["manifest_path"].endswith(f"/_runs/ingest_date={run['started_at'][:10]}/run={run['run_id']}"
                                             "/_manifest.json")


async def test_bad_scope_settings_fail_the_listing_naming_the_setting(stack: RunningStack,
                                                                      workload_env: None) -> None:
    from shared.parents import ParentListingError

    missing_group = "00000000-0000-0000-0000-00000000beef"
    with pytest.raises(ParentListingError) as info:
        await listed_users(stack, SYNC_USER_GROUPS=missing_group)
    assert info.value.code == "ScopeGroupNotFound" and "SYNC_USER_GROUPS" in str(info.value)
    assert missing_group in str(info.value)
    with pytest.raises(ParentListingError) as info:
        await listed_users(stack, SYNC_USER_FILTER="displayName eqq 'x'")
    assert "SYNC_USER_FILTER" in str(info.value)
