"""A tiny race end to end: a real local stack with throttling and latency on, every contender (the read-only floor
included) in its own process, the emulator's counters per contender; every contender copies exactly what the
tenant's layout holds. No timing is asserted: the numbers are the benchmark's output, not the test's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import lower_bound as lb
from bench import race
from devstack.tenant.sizes import TenantSizes

pytestmark = pytest.mark.timeout(600)


def test_per_scope_sums_endpoints_and_throttles_by_family() -> None:
    scopes = race.per_scope({"by_endpoint": {"users": 2, "messages": 7, "folder_messages_delta": 3, "$batch": 4},
                             "throttled_by_scope": {"outlook.concurrency": 2, "directory.tenant_application": 1,
                                                    "conditional_access": 1}})
    assert scopes["directory"] == {"requests": 2, "throttled": 1}
    assert scopes["outlook"] == {"requests": 10, "throttled": 2}
    assert scopes["ca"] == {"requests": 0, "throttled": 1}
    assert scopes["$batch envelopes"] == {"requests": 4, "throttled": 0}  # not a throttling scope of its own


def test_the_product_races_with_the_activity_slots_host_json_gives_an_instance() -> None:
    host = json.loads((race.REPO / "host.json").read_text("utf-8"))
    assert race.host_activity_slots() == host["extensions"]["durableTask"]["maxConcurrentActivityFunctions"]


def test_plan_counts_one_page_per_mailbox_at_least_and_skips_no_mailbox_users() -> None:
    sizes = TenantSizes.demo()
    plan = race.plan_for(3, sizes, page_size=10)
    assert plan.users == sizes.users and len(plan.mailbox_pages) == sizes.users
    assert 0 < plan.messages <= sizes.total_messages
    assert min(plan.mailbox_pages.values()) == 1
    assert plan.requests == plan.user_pages + sum(plan.mailbox_pages.values())
    assert race.bound_for(plan, lb.Latency(0.05)).chain_pages >= max(plan.mailbox_pages.values())


def test_tiny_race_every_contender_copies_the_whole_tenant(tmp_path: Path) -> None:
    out = tmp_path / "race.json"
    code = race.main(["--preset", "tiny", "--latency-ms", "20", "--tail-rate", "0.02", "--tail-ms", "100",
                      "--concurrency", "4,16", "--json", str(out)])
    numbers = json.loads(out.read_text("utf-8"))
    rows = {row["contender"]: row for row in numbers["rows"]}
    assert set(rows) == {"this product (4 activities)", "this product (16 activities)", "read-only floor",
                         "serial pager", "msgraph-sdk script"}
    assert numbers["product_concurrency"] == [4, 16]
    for name, row in rows.items():
        assert row["error"] is None, (name, row["error"])
        assert row["complete"], (name, row["messages"], numbers["plan"]["messages"])
        assert row["requests"] >= numbers["plan"]["requests"] - 1  # the planned pages, 1 for the listing's RU
        assert row["outlook_max_concurrent"] <= 4, name
        assert row["peak_rss_mb"] > 0 and row["cpu_us_per_record"] > 0
    assert rows["serial pager"]["outlook_max_concurrent"] == 1  # it really is serial
    floor = rows["read-only floor"]
    assert floor["messages"] == numbers["plan"]["messages"] and floor["users"] == numbers["plan"]["users"]
    assert floor["outlook_max_concurrent"] == 1  # a mailbox's chain is sequential, however many run at once
    assert floor["x_floor"] == 1.0
    for name, row in rows.items():  # every contender's time is also put against the measured floor
        assert row["x_floor"] == pytest.approx(row["seconds"] / floor["seconds"]), name
    assert numbers["bound"]["seconds"] > 0 and numbers["orjson_us_per_record"] > 0
    assert code == 0
