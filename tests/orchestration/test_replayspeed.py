"""The replay speed-up: the SDK's history timestamps parsed by the standard library give what dateutil gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import function_app
from localrun import history as h
from localrun.registry import FunctionIndex
from localrun.replay import run_episode
from orchestrators import names, replayspeed
from orchestrators.plan import plan_run
from orchestrators.replayspeed import dateutil_parse
from shared.streams import CATALOG

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


def test_the_sdk_parses_history_timestamps_through_the_fast_parser() -> None:
    assert function_app.app is not None
    assert replayspeed.installed()


@given(moments, st.integers(min_value=0, max_value=9_999_999), st.sampled_from([0, 3, 6, 7]))
def test_extension_timestamps_parse_to_the_same_instant_as_dateutil(moment: datetime, ticks: int,
                                                                    digits: int) -> None:
    fraction = f".{ticks:07d}"[:digits + 1] if digits else ""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    fast, slow = replayspeed.parse_timestamp(text), dateutil_parse(text)
    assert fast == slow and fast.utcoffset() == slow.utcoffset() == timedelta(0)
    assert fast.isoformat() == slow.isoformat()


@pytest.mark.parametrize("text", ["2026-01-02T03:04:05+02:00", "2026-01-02 03:04:05", "2026-01-02T03:04:05.5Z",
                                  "Fri, 02 Jan 2026 03:04:05 GMT"])
def test_other_formats_match_dateutil(text: str) -> None:
    assert replayspeed.parse_timestamp(text) == dateutil_parse(text)


def test_a_replay_gives_the_same_actions_and_status_with_either_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    fn = FunctionIndex.from_app(function_app.app).orchestrator(names.SYNC_RUN)
    t0 = datetime(2026, 1, 2, 3, 4, 5, 1234, tzinfo=UTC)
    request = json.dumps({"tenant_id": "t", "trigger": "timer", "overrides": {}})
    history = [h.orchestrator_started(t0), h.execution_started(t0, names.SYNC_RUN, request)]
    first = run_episode(fn, "sync-x", history, request)
    t1 = t0 + timedelta(seconds=2, microseconds=7)
    history += [h.task_scheduled(t0, 0, names.PLAN_SYNC, first.actions[0]["input"]), h.orchestrator_completed(t0),
                h.orchestrator_started(t1), h.task_completed(t1, 0, json.dumps(plan_run(CATALOG, CATALOG)))]
    fast = run_episode(fn, "sync-x", history, request)
    monkeypatch.setattr(replayspeed._module(), "dt_parse", dateutil_parse)
    slow = run_episode(fn, "sync-x", history, request)
    assert fast.state == slow.state and len(fast.actions) > 2
