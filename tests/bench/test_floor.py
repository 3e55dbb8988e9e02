"""The read-only floor against the session stack, in its own process as the race runs it: it reads every mailbox,
and one mailbox's chain failing (a cut JSON body, a dropped connection) makes the whole run an error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import race
from bench.contenders.common import ContenderConfig, ContenderResult
from tests.conftest import RunningStack

pytestmark = pytest.mark.timeout(300)
PAGE_SIZE = 7  # several pages per mailbox, so chains really follow nextLinks


@pytest.fixture()
def config(stack: RunningStack, tmp_path: Path) -> Path:
    app = stack.admin.register_app(roles=race.MAILBOX_ROLES)
    env = stack.env
    path = tmp_path / "floor.json"
    ContenderConfig(env.tenant_id, app["client_id"], app["secret"]["value"], env.authority_host, env.graph_url or "",
                    env.ca_bundle, str(tmp_path / "out"), PAGE_SIZE, race.USER_SELECT,
                    race.MESSAGE_SELECT).save(path)
    return path


@pytest.fixture()
def faults_reset(stack: RunningStack) -> Iterator[None]:
    yield
    stack.admin.graph("PATCH", "/settings", {"faults": {"malformed_rate": 0.0, "drop_rate": 0.0, "path_prefix": ""}})


def busiest_mailbox(stack: RunningStack, config: Path) -> tuple[str, int]:
    """A user whose mailbox spans several pages, read with the floor's own app (the chain a fault will break)."""
    cfg = ContenderConfig.load(config)
    http = stack.http()
    token = race.Admin(stack.env).token(cfg.client_id, cfg.client_secret)
    headers = {"Authorization": f"Bearer {token}"}
    users = http.get(f"{cfg.graph_url}/v1.0/users?$top=999&$select=id", headers=headers, timeout=60).json()["value"]
    for user in users:
        resp = http.get(f"{cfg.graph_url}/v1.0/users/{user['id']}/messages?$top={PAGE_SIZE}&$select=id",
                        headers=headers, timeout=60)
        if resp.status_code == 200 and "@odata.nextLink" in resp.json():
            return str(user["id"]), len(users)
    raise AssertionError("no mailbox in the session tenant spans two pages")


def run_floor(config: Path) -> ContenderResult:
    return race.run_child("bench.contenders.floor", str(config), "16", name="read-only floor")


def test_the_floor_reads_every_user_and_follows_every_chain(stack: RunningStack, config: Path) -> None:
    _, users = busiest_mailbox(stack, config)
    stack.admin.graph("POST", "/counters/reset")
    result = run_floor(config)
    assert result.error is None, result.error
    assert result.users == users and result.records > 0 and result.throttled == 0
    assert result.requests > users + 1  # the listing, one first page per user, and further pages
    counters = stack.admin.graph("GET", "/counters")
    assert max(counters.get("outlook_max_concurrent", {}).values(), default=0) == 1  # a chain is sequential
    assert result.cpu_seconds > 0 and result.peak_rss_mb > 0


@pytest.mark.parametrize("fault", [{"malformed_rate": 1.0}, {"drop_rate": 1.0}], ids=["cut-json", "dropped"])
def test_one_failed_chain_fails_the_floor(stack: RunningStack, config: Path, faults_reset: None,
                                          fault: dict[str, float]) -> None:
    clean = run_floor(config)
    assert clean.error is None, clean.error
    user_id, _ = busiest_mailbox(stack, config)
    stack.admin.graph("PATCH", "/settings", {"faults": {**fault, "path_prefix": f"/users/{user_id}/messages"}})
    broken = run_floor(config)
    assert broken.error is not None and "1 of" in broken.error and user_id in broken.error, broken.error
    assert broken.users == clean.users and broken.records < clean.records
