"""All 22 streams copied from the Graph emulator into Azurite and compared with what the emulator holds."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from shared.config import Settings, load_settings
from shared.contracts import PartitionResult, RunInfo
from shared.runtime import close_engines
from shared.streams import CATALOG
from tests.conftest import RunningStack
from tests.engine.conftest import engine_environ, unique
from tests.engine.oracle import Oracle
from tests.engine.runner import read_records, run_streams

SNAKE = re.compile(r"^_?[a-z0-9_]+$")


@pytest.fixture(scope="module")
def oracle(stack: RunningStack) -> Oracle:
    if not stack.env.graph_url:
        pytest.skip("the Graph emulator is not part of this stack")
    return Oracle(stack)


@pytest.fixture(scope="module")
def expected(oracle: Oracle) -> dict[str, set[tuple[str | None, str]]]:
    return oracle.expected()


def make_run(stack: RunningStack) -> RunInfo:
    return RunInfo(run_id=unique("run"), tenant_id=stack.env.tenant_id, trigger="local",
                   started_at=datetime.now(UTC).isoformat(), overrides={})


async def copied(settings: Settings, results: dict[str, list[PartitionResult]]
                 ) -> dict[str, list[tuple[str | None, str, dict]]]:  # type: ignore[type-arg]
    out: dict[str, list[tuple[str | None, str, dict]]] = {}  # type: ignore[type-arg]
    for stream, parts in results.items():
        spec = CATALOG[stream]
        rows: list[tuple[str | None, str, dict]] = []  # type: ignore[type-arg]
        for part in parts:
            if part["status"] != "ok":
                continue
            assert part["blob_path"]
            records = await read_records(settings, part["blob_path"])
            assert len(records) == part["records"]
            for r in records:
                key = r.get(spec.parent_key) if spec.fan_out and spec.parent_key else None
                rows.append((key, r["id"], r))
        out[stream] = rows
    return out


@pytest.mark.parametrize(("credential", "snake_case", "fmt"), [
    ("secret", "false", "jsonl.gz"),
    ("certificate", "true", "jsonl"),
])
async def test_every_stream_matches_the_emulator(stack: RunningStack, workload_env: None, expected, oracle: Oracle,
                                                 credential: str, snake_case: str, fmt: str) -> None:
    settings = load_settings(engine_environ(stack, GRAPH_CREDENTIAL_TYPE=credential, SYNC_SNAKE_CASE=snake_case,
                                            OUTPUT_FORMAT=fmt))
    run = make_run(stack)
    try:
        results = await run_streams(settings, run)
        rows = await copied(settings, results)
    finally:
        await close_engines()
    assert set(results) == set(CATALOG)
    for stream, parts in results.items():
        failed = [p for p in parts if p["status"] == "failed"]
        assert not failed, f"{stream}: {failed[:2]}"
        for p in parts:
            if p["status"] == "skipped":
                assert CATALOG[stream].workload in ("outlook", "files"), p
                assert p.get("reason"), p
            else:
                assert p["blob_path"] and p["blob_path"].endswith(f".{fmt}")
                assert f"/{stream}/ingest_date=" in p["blob_path"] and f"run={run['run_id']}" in p["blob_path"]
        pairs = [(k, i) for k, i, _ in rows[stream]]
        dupes = [pair for pair, n in Counter(pairs).items() if n > 1]
        assert not dupes, f"{stream}: duplicated {dupes[:3]}"
        missing, extra = expected[stream] - set(pairs), set(pairs) - expected[stream]
        assert not missing and not extra, f"{stream}: missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}"
    assert all(expected[s] for s in CATALOG), [s for s in CATALOG if not expected[s]]
    for stream, stream_rows in rows.items():
        spec = CATALOG[stream]
        for _, _, record in stream_rows:
            assert record["tenant_id"] == stack.env.tenant_id and record["_extracted_at"].endswith("Z")
            if spec.fan_out and spec.parent_key:
                assert record[spec.parent_key]
            if snake_case == "true":
                assert all(SNAKE.match(k) for k in record), (stream, sorted(record))
    users = rows["users"][0][2]
    assert ("user_principal_name" in users) == (snake_case == "true")
    assert ("userPrincipalName" in users) == (snake_case == "false")


async def test_user_without_mailbox_is_skipped_with_its_reason(stack: RunningStack, workload_env: None,
                                                               oracle: Oracle) -> None:
    users = oracle.ids("/users")
    no_mailbox = [u for u in users if oracle.status(f"/users/{u}/messages?$top=1") == 404]
    assert no_mailbox, "the demo tenant should hold a user without a mailbox"
    settings = load_settings(engine_environ(stack))
    run = make_run(stack)
    from shared.sync import sync_partition

    try:
        result = await sync_partition(settings, run, "mail_messages", no_mailbox[0])
    finally:
        await close_engines()
    assert result["status"] == "skipped"
    assert result.get("error_code") in ("MailboxNotEnabledForRESTAPI", "ResourceNotFound")
    assert "mailbox" in result.get("reason", "")
    assert result["blob_path"] is None and result["records"] == 0 and result["requests"] == 1


async def test_mailbox_outside_the_access_policy_is_skipped(stack: RunningStack, workload_env: None,
                                                            oracle: Oracle) -> None:
    users = oracle.ids("/users")
    scoped_out = [u for u in users if oracle.status(f"/users/{u}/messages?$top=1") == 403]
    assert scoped_out, "the demo tenant should hold a mailbox outside the app's access policy"
    settings = load_settings(engine_environ(stack))
    from shared.sync import sync_partition

    try:
        result = await sync_partition(settings, make_run(stack), "calendar_events", scoped_out[0])
    finally:
        await close_engines()
    assert result["status"] == "skipped" and result.get("error_code") == "ErrorAccessDenied"
    assert "access policy" in result.get("reason", "")
