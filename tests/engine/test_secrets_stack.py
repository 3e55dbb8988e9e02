"""No secret and no token in logs, results, manifests or blobs, even when requests fail and are retried."""

from __future__ import annotations

import logging

import pytest

from shared.config import load_settings
from shared.runtime import close_engines, get_engine
from shared.sync import sync_partition, write_manifest
from tests.conftest import RunningStack
from tests.engine.conftest import engine_environ
from tests.engine.runner import read_records
from tests.engine.test_sync_stack import make_run


async def test_nothing_secret_leaks_from_a_faulty_run(stack: RunningStack, workload_env: None,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    if not stack.env.graph_url:
        pytest.skip("the Graph emulator is not part of this stack")
    caplog.set_level(logging.DEBUG)
    settings = load_settings(engine_environ(stack, GRAPH_MAX_ATTEMPTS="10"))
    run = make_run(stack)
    stack.admin.graph("PATCH", "/settings", {"faults": {"seed": 2, "error_rate": 0.5, "drop_rate": 0.3,
                                                        "path_prefix": ""}})
    try:
        engine = await get_engine(settings)
        results = [await sync_partition(settings, run, stream, None) for stream in ("users", "groups")]
        results.append(await sync_partition(settings, run, "applications", None))
        summary = await write_manifest(settings, run, results)
        token = (await engine.tokens.get(stack.env.tenant_id)).token
        assert engine.secrets is not None
        secret = (await engine.secrets.get(settings.client_secret_name)).value
        blobs = [str(await read_records(settings, r["blob_path"])) for r in results if r["blob_path"]]
        manifest = (await (await engine.blob(summary["manifest_path"]).download_blob()).readall()).decode()
    finally:
        stack.admin.graph("PATCH", "/settings", {"faults": {"error_rate": 0, "drop_rate": 0, "path_prefix": ""}})
        await close_engines()
    assert any(r["retries"] for r in results), "the faults should have caused retries (and their log lines)"
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert "request-id=" in logs
    haystacks = {"logs": logs, "results": repr(results), "manifest": manifest, "blobs": "".join(blobs)}
    for needle_name, needle in (("secret", secret), ("token", token), ("token signature", token.split(".")[2]),
                                ("workload secret", stack.env.workload_identity.client_secret)):
        for where, text in haystacks.items():
            assert needle not in text, f"{needle_name} found in {where}"
