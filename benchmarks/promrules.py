"""A faithful-enough evaluator of simple Prometheus alerting rules over a recorded timeline.

Only what the public vLLM / llm-d example rules use: an instant gauge selector or ``rate(counter[R])``
compared with a constant, per series, evaluated every ``interval`` seconds, with ``for:``. Semantics
follow Prometheus: an instant selector takes the newest sample within the 5-minute lookback unless
the series went stale (a failed scrape marks every series of that target stale); ``rate`` uses the
samples inside the range, is counter-reset aware and extrapolates to the range edges like
``extrapolatedRate``; an alert is pending from the first evaluation where the expression has a result
above the threshold and fires once it has stayed so for ``for`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LOOKBACK_S = 300.0


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    threshold: float
    for_s: float
    rate_range_s: float | None = None  # rate(metric[range]) when set, the instant value otherwise
    interval_s: float = 30.0


Series = list[tuple[float, float | None]]  # (ts, value); value None = a stale marker


def _instant(series: Series, t: float) -> float | None:
    latest = None
    for ts, v in series:
        if ts > t:
            break
        latest = (ts, v)
    if latest is None or latest[1] is None or t - latest[0] > LOOKBACK_S:
        return None
    return latest[1]


def _rate(series: Series, t: float, rng: float) -> float | None:
    pts = [(ts, v) for ts, v in series if t - rng < ts <= t and v is not None]
    if len(pts) < 2:
        return None
    increase, prev = 0.0, pts[0][1]
    for _, v in pts[1:]:
        increase += v - prev if v >= prev else v  # a reset: the counter restarted from 0
        prev = v
    first_t, last_t = pts[0][0], pts[-1][0]
    sampled = last_t - first_t
    avg_gap = sampled / (len(pts) - 1)
    start_gap, end_gap = first_t - (t - rng), t - last_t
    # extrapolatedRate: extend to the range edges unless a gap is larger than 1.1 average intervals.
    extend_start = start_gap if start_gap < avg_gap * 1.1 else avg_gap / 2
    if pts[0][1] > 0 and increase > 0:
        extend_start = min(extend_start, sampled * (pts[0][1] / increase))  # counters do not go below 0
    extend_end = end_gap if end_gap < avg_gap * 1.1 else avg_gap / 2
    return increase * (sampled + extend_start + extend_end) / sampled / rng


def first_firing(rule: Rule, series: Series, start: float, end: float) -> float | None:
    """When the alert would first fire (its ``for`` satisfied), or None."""
    active_since = None
    t = start
    while t <= end:
        value = _rate(series, t, rule.rate_range_s) if rule.rate_range_s else _instant(series, t)
        if value is not None and value > rule.threshold:
            active_since = t if active_since is None else active_since
            if t - active_since >= rule.for_s:
                return t
        else:
            active_since = None
        t += rule.interval_s
    return None


def firings(rule: Rule, series: Series, start: float, end: float) -> Iterable[float]:
    """Every time the alert starts firing (for counting false alerts)."""
    active_since, firing = None, False
    t = start
    while t <= end:
        value = _rate(series, t, rule.rate_range_s) if rule.rate_range_s else _instant(series, t)
        if value is not None and value > rule.threshold:
            active_since = t if active_since is None else active_since
            if not firing and t - active_since >= rule.for_s:
                firing = True
                yield t
        else:
            active_since, firing = None, False
        t += rule.interval_s


# The public example rules, as published (see benchmarks/README.md for the sources).
VLLM_RULES = [
    Rule("vllm VllmKVCacheNearFull (kv > 0.95 for 5m)", "vllm:kv_cache_usage_perc", 0.95, 300),
    Rule("vllm VllmHighQueueDepth (waiting > 50 for 3m)", "vllm:num_requests_waiting", 50, 180),
    Rule("vllm VllmPreemptionSpike (rate(vllm:num_preemptions[5m]) > 1 for 3m)", "vllm:num_preemptions", 1, 180,
         rate_range_s=300),
]
LLMD_RULES = [
    Rule("llm-d KV > 0.9 for 10m", "vllm:kv_cache_usage_perc", 0.9, 600),
    Rule("llm-d waiting > 50 for 5m", "vllm:num_requests_waiting", 50, 300),
]
# The same preemption rule with the name the engine really exports, to show what the typo costs.
CORRECTED = [
    Rule("vllm preemption rule, name corrected (vllm:num_preemptions_total)", "vllm:num_preemptions_total", 1, 180,
         rate_range_s=300),
]
