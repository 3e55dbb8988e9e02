"""Pure parts without servers: the planner, request validation, progress merging, local settings files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localrun.settings import applied, read_settings_file
from orchestrators import progress as pg
from orchestrators.plan import partitions_of, plan_run
from orchestrators.requests import MAX_BODY_BYTES, parse_sync_request
from shared.streams import CATALOG

TENANT = "0a0a0a0a-0000-4000-8000-00000000000a"


def test_plan_of_all_streams():
    plan = plan_run(CATALOG, CATALOG)
    assert plan["streams"] == list(CATALOG)
    assert set(plan["single"]) == {s.name for s in CATALOG.values() if s.partition_parent is None}
    groups = {g["parent_stream"]: g["streams"] for g in plan["groups"]}
    assert groups == {"groups": ["group_member", "group_owner"], "teams": ["channels", "team_member"],
                      "chats": ["chat_messages"], "users": ["mail_messages", "calendar_events", "contacts", "drives"],
                      "drives": ["drive_items"], "directory_roles": ["directory_role_member"]}
    assert all(g["after"] is None for g in plan["groups"])
    covered = plan["single"] + [s for g in plan["groups"] for s in g["streams"]]
    assert sorted(covered) == sorted(CATALOG)


def test_plan_waits_for_the_producer_of_a_parent_stream_when_asked():
    plan = plan_run(CATALOG, CATALOG, parents_from_run=True)
    after = {g["parent_stream"]: g["after"] for g in plan["groups"]}
    assert after["users"] == "stream:users" and after["chats"] == "stream:chats"
    assert after["drives"] == "group:users"  # drives are themselves a per-user stream
    subset = plan_run(CATALOG, ["drive_items"], parents_from_run=True)
    assert subset["single"] == [] and subset["groups"] == [{"parent_stream": "drives", "streams": ["drive_items"],
                                                             "after": None}]


def test_plan_rejects_unknown_streams():
    with pytest.raises(ValueError, match=r"unknown stream.*nope"):
        plan_run(CATALOG, ["users", "nope"])


def test_partitions_are_parent_major():
    assert partitions_of(["a", "b"], ["1", "2"]) == [("a", "1"), ("b", "1"), ("a", "2"), ("b", "2")]


def parse(body: object, tenants: tuple[str, ...] = (TENANT,)):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_sync_request(raw, list(CATALOG), tenants)


def test_empty_body_is_a_normal_run():
    request = parse(b"")
    assert request.problems == [] and request.overrides == {} and request.tenant_id == TENANT


def test_streams_all_and_duplicates():
    assert parse({"streams": "all"}).overrides["streams"] == list(CATALOG)
    assert parse({"streams": ["users", "users", "groups"]}).overrides["streams"] == ["users", "groups"]
    assert parse({"streams": []}).problems[0].startswith("streams:")
    assert parse({"streams": "users"}).problems[0].startswith("streams:")


def test_times_are_normalised_to_utc():
    request = parse({"start_time": "2024-01-01T02:00:00+02:00", "end_time": "2024-01-02T00:00:00Z"})
    assert request.overrides == {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z"}
    assert "not before" in parse({"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"}
                                 ).problems[0]
    assert "no time zone" in parse({"start_time": "2024-01-02T00:00:00"}).problems[0]
    assert "ISO 8601" in parse({"end_time": 5}).problems[0]


def test_full_false_is_no_override_and_body_limit():
    assert parse({"full": False}).overrides == {}
    assert "limit" in parse(b"{" + b" " * MAX_BODY_BYTES + b"}").problems[0]


def test_every_problem_is_listed_once_with_its_field():
    problems = parse({"streams": ["x"], "full": 1, "user_filter": 3, "tenant_id": "nope", "a": 1, "b": 2}).problems
    assert [p.split(":")[0] for p in problems] == ["a", "b", "tenant_id", "streams", "user_filter", "full"]


def test_live_progress_merges_running_groups_and_chunks():
    run = pg.status("syncing", "r", {"users": {**pg.empty(1), "done": 1, "ok": 1, "records": 5},
                                     "mail_messages": pg.empty()}, groups={"users": "g"})
    group = pg.status("syncing", "r", {"mail_messages": {**pg.empty(700), "done": 500, "ok": 500, "records": 9}},
                      chunks=["c1"])
    chunk = pg.status("syncing", "r", {"mail_messages": {**pg.empty(200), "done": 20, "ok": 19, "failed": 1}})
    live = pg.live_streams(run, [group], [chunk])
    assert live["mail_messages"] == {"total": 700, "done": 520, "ok": 519, "skipped": 0, "failed": 1,
                                     "records": 9}
    assert live["users"]["done"] == 1
    assert pg.totals(live) == {"total": 701, "done": 521, "ok": 520, "skipped": 0, "failed": 1, "records": 14}


def test_settings_files(tmp_path: Path):
    as_json = tmp_path / "s.json"
    as_json.write_text(json.dumps({"IsEncrypted": False, "Values": {"GRAPH_TENANT_IDS": TENANT, "X": True,
                                                                     "FUNCTIONS_WORKER_RUNTIME": "python"}}))
    assert read_settings_file(as_json) == {"GRAPH_TENANT_IDS": TENANT, "X": "true"}
    as_env = tmp_path / "s.env"
    as_env.write_text(f"# comment\nexport GRAPH_TENANT_IDS='{TENANT}'\n\nSYNC_STREAMS=users,groups\n")
    assert read_settings_file(as_env) == {"GRAPH_TENANT_IDS": TENANT, "SYNC_STREAMS": "users,groups"}
    broken = tmp_path / "b.env"
    broken.write_text("JUSTAWORD\n")
    with pytest.raises(ValueError, match=r"b.env:1: expected KEY=VALUE"):
        read_settings_file(broken)
    with pytest.raises(ValueError, match="cannot read"):
        read_settings_file(tmp_path / "missing.json")


def test_applied_settings_are_restored(monkeypatch: pytest.MonkeyPatch):
    import os

    monkeypatch.setenv("SYNC_STREAMS", "users")
    monkeypatch.delenv("SYNC_USER_FILTER", raising=False)
    with applied({"SYNC_STREAMS": "groups", "SYNC_USER_FILTER": "x"}):
        assert os.environ["SYNC_STREAMS"] == "groups" and os.environ["SYNC_USER_FILTER"] == "x"
    assert os.environ["SYNC_STREAMS"] == "users" and "SYNC_USER_FILTER" not in os.environ
