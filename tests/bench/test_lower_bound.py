"""The lower bound's arithmetic: burst-aware scope admission, page chains, the critical path, bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import lower_bound as lb


def test_mean_latency_counts_the_tail_at_one_and_a_half_times() -> None:
    assert lb.Latency(0.06, 0.02, 0.6).mean_s == pytest.approx(0.06 + 0.02 * 0.9)
    assert lb.Latency(0.05).mean_s == 0.05


def test_scope_admits_its_first_budget_at_once_then_the_sustained_rate() -> None:
    reports = lb.reports_load(5)
    assert reports.seconds == 0.0  # five requests fit in the first window
    assert lb.reports_load(25).seconds == pytest.approx(40.0)  # 20 more at 0.5/s
    assert lb.reports_load(25).naive_seconds == pytest.approx(50.0)
    ca = lb.conditional_access_load(12)
    assert ca.seconds == pytest.approx(11.0)


def test_directory_budget_follows_the_tenant_tier() -> None:
    assert lb.directory_load(8000 + 800, "L").seconds == pytest.approx(1.0)
    assert lb.directory_load(3500 + 350, "S").seconds == pytest.approx(1.0)
    with pytest.raises(ValueError, match="tier 'XL' unknown"):
        lb.directory_load(1, "XL")


def test_only_the_busiest_mailbox_is_a_scope_that_can_bind() -> None:
    loads = lb.outlook_loads({"a": 3, "b": 25_000, "c": 10})
    assert [s.scope for s in loads] == ["outlook.mailbox[b]"]
    assert loads[0].seconds == pytest.approx((25_000 - 10_000) / (10_000 / 600))
    assert lb.outlook_loads({}) == []


def test_critical_path_is_the_first_listing_page_plus_the_longest_child_chain() -> None:
    assert lb.critical_path_pages(2, [1, 1, 7, 3]) == 8
    assert lb.critical_path_pages(11, [1, 2]) == 11  # the listing itself is the longer chain
    assert lb.critical_path_pages(0, [4]) == 4
    assert lb.critical_path_pages(1, []) == 1


def test_bound_is_the_larger_of_rate_and_latency_and_names_its_cause() -> None:
    latency = lb.Latency(0.1)
    chain_bound = lb.lower_bound([lb.reports_load(5)], 30, latency)
    assert chain_bound.seconds == pytest.approx(3.0)
    assert chain_bound.limited_by == "page chain latency"
    rate_bound = lb.lower_bound([lb.reports_load(105), lb.global_load(10)], 30, latency)
    assert rate_bound.seconds == pytest.approx(200.0)
    assert rate_bound.limited_by == "scope reports"


def test_pages_for_counts_the_empty_page_of_an_empty_partition() -> None:
    assert lb.pages_for(0, 999) == 1
    assert lb.pages_for(999, 999) == 1
    assert lb.pages_for(1000, 999) == 2
    with pytest.raises(ValueError, match="page_size"):
        lb.pages_for(5, 0)


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"Latency\.base_s"):
        lb.Latency(-1.0)
    with pytest.raises(ValueError, match="tail_rate"):
        lb.Latency(0.1, 1.5, 0.2)
    with pytest.raises(ValueError, match="budget and window_s"):
        lb.ScopeLoad("x", 1, 0, 10)
    with pytest.raises(ValueError, match=r"ScopeLoad\(x\).units"):
        lb.ScopeLoad("x", -1, 1, 10)


@given(units=st.integers(0, 10**6), budget=st.integers(1, 10**4), window=st.floats(0.1, 1000))
def test_no_schedule_beats_the_bound_of_a_sliding_window(units: int, budget: int, window: float) -> None:
    """The best possible sliding-window schedule sends `budget` requests per window starting at t=0; its last
    request leaves at (ceil(units / budget) - 1) * window, never before the bound."""
    load = lb.ScopeLoad("s", units, budget, window)
    best = max(0, math.ceil(units / budget) - 1) * window
    assert load.seconds <= best + 1e-6 * max(1.0, best)
