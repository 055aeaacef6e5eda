"""Window quantile math (Prometheus histogram_quantile semantics) on bucket deltas."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferguard.normalise.quantile import histogram_quantile

INF = math.inf


def test_empty_window_is_unknown_not_zero() -> None:
    assert histogram_quantile(0.5, (0.1, 1.0, INF), (0.0, 0.0, 0.0)) is None


def test_interpolates_linearly_inside_the_bucket() -> None:
    bounds, cum = (0.1, 0.5, INF), (2.0, 4.0, 4.0)
    # rank 2 reaches bucket 0 exactly: 0 + 0.1 * 2/2
    assert histogram_quantile(0.5, bounds, cum) == pytest.approx(0.1)
    # rank 3: one past bucket 0, half-way through bucket 1's two observations: 0.1 + 0.4 * 1/2
    assert histogram_quantile(0.75, bounds, cum) == pytest.approx(0.3)


def test_first_bucket_starts_at_zero() -> None:
    assert histogram_quantile(0.5, (2.0, INF), (10.0, 10.0)) == pytest.approx(1.0)


def test_all_in_inf_bucket_returns_last_finite_bound() -> None:
    assert histogram_quantile(0.5, (1.0, 30.0, INF), (0.0, 0.0, 7.0)) == 30.0
    assert histogram_quantile(0.99, (1.0, 30.0, INF), (5.0, 5.0, 7.0)) == 30.0


def test_le_zero_bucket_returns_zero() -> None:
    # SGLang queue_time has le="0.0": observations there are exactly 0, no interpolation below 0.
    assert histogram_quantile(0.5, (0.0, 0.1, INF), (3.0, 4.0, 4.0)) == 0.0
    # ... and a rank past it interpolates from 0.0 upward.
    assert histogram_quantile(0.99, (0.0, 0.1, INF), (3.0, 4.0, 4.0)) == pytest.approx(0.1 * (3.96 - 3.0))


def test_incomplete_histograms_are_unknown() -> None:
    assert histogram_quantile(0.5, (0.1, 1.0), (1.0, 2.0)) is None  # no +Inf (truncated capture)
    assert histogram_quantile(0.5, (INF,), (5.0,)) is None  # only +Inf: nothing to interpolate
    assert histogram_quantile(0.5, (0.1, INF), (1.0,)) is None  # mismatched lengths
    assert histogram_quantile(0.5, (0.1, INF), (math.nan, math.nan)) is None


def test_non_monotone_window_stays_within_bounds() -> None:
    # A scrape racing an observe can print a bucket above its successor; never answer below 0 or NaN.
    for q in (0.1, 0.5, 0.9, 0.99):
        v = histogram_quantile(q, (0.1, 0.2, INF), (5.0, 3.0, 6.0))
        assert v is not None and 0.0 <= v <= 0.2
    assert histogram_quantile(0.5, (0.1, 0.2, INF), (math.nan, 3.0, 6.0)) is None


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12),
    st.integers(min_value=0, max_value=50),
    st.floats(min_value=0.01, max_value=0.99),
    st.floats(min_value=0.01, max_value=0.99),
)
def test_quantile_within_bounds_and_monotone_in_q(per_bucket: list[int], in_inf: int, q1: float,
                                                  q2: float) -> None:
    bounds = (*(float(2**i) for i in range(len(per_bucket))), INF)
    cum: list[float] = []
    total = 0.0
    for c in (*per_bucket, in_inf):
        total += c
        cum.append(total)
    lo, hi = sorted((q1, q2))
    a = histogram_quantile(lo, bounds, cum)
    b = histogram_quantile(hi, bounds, cum)
    if total == 0:
        assert a is None and b is None
        return
    assert a is not None and b is not None
    assert 0.0 <= a <= b <= bounds[-2]
