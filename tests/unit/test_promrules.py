"""The rule evaluator behind benchmarks/bench_detection.py: a baseline is only fair if it is right."""

from __future__ import annotations

import pytest

from benchmarks.promrules import Rule, _rate, first_firing


def test_rate_of_a_steady_counter_matches_prometheus() -> None:
    # 1/s counter scraped every 15 s: rate over [1m] at t=120 is exactly 1 (extrapolated to the edges).
    series = [(float(t), float(t)) for t in range(0, 121, 15)]
    assert _rate(series, 120.0, 60.0) == pytest.approx(1.0)


def test_rate_handles_a_counter_reset() -> None:
    # The window (0, 60] holds 115, 5 (reset), 20, 35: increase 5 + 15 + 15 = 35 over 45 s sampled,
    # extrapolated by one 15 s gap to the window start, as Prometheus does: 35 * 60/45 / 60.
    series = [(0.0, 100.0), (15.0, 115.0), (30.0, 5.0), (45.0, 20.0), (60.0, 35.0)]
    assert _rate(series, 60.0, 60.0) == pytest.approx(35 / 45)


def test_for_clause_needs_the_condition_to_hold_throughout() -> None:
    rule = Rule("kv", "x", 0.95, for_s=60, interval_s=30)
    always = [(float(t), 0.99) for t in range(0, 300, 10)]
    assert first_firing(rule, always, 0, 300) == 60
    blip = [(float(t), 0.99 if t % 60 else 0.1) for t in range(0, 300, 10)]
    assert first_firing(rule, blip, 0, 300) is None  # resets every minute: never fires


def test_absent_series_never_fires() -> None:
    assert first_firing(Rule("p", "vllm:num_preemptions", 1, 180, rate_range_s=300), [], 0, 1000) is None
