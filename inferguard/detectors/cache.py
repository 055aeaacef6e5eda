"""Prefix-cache and speculative-decoding efficiency against their healthy baselines."""

from __future__ import annotations

from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.window import CLEAR, HOLD, UNKNOWN, Condition, Window, ev


def _drop(w: Window, signal: str, label: str, fraction: float, min_base: float) -> Condition:
    value = w.latest(signal)
    base = w.baselines.get(signal)
    if value is None or base is None or w.warming_up or base < min_base:
        return UNKNOWN
    limit = base * fraction
    evidence = (ev(signal, value, limit, "<", f"baseline {base:.3f} x{fraction:g}"),
                ev(f"{signal}_baseline", base))
    if value < limit:
        return Condition("fire", "warning", f"{label} {value:.0%} vs baseline {base:.0%}", evidence)
    if value >= base * (1 + fraction) / 2:  # hysteresis: back above the midpoint
        return CLEAR
    return HOLD


def prefix_cache_regression(w: Window, cfg: DetectorConfig) -> Condition:
    # No queries in the window means no traffic to judge, not a regression.
    if not w.latest("prefix_cache_queries_per_s") and "prefix_cache_queries_per_s" in w.last.values:
        return UNKNOWN
    return _drop(w, "prefix_cache_hit_ratio", "prefix-cache hit ratio",
                 cfg.prefix_drop_fraction, cfg.prefix_min_baseline)


def spec_decode_collapse(w: Window, cfg: DetectorConfig) -> Condition:
    return _drop(w, "spec_accept_ratio", "speculative acceptance", cfg.spec_drop_fraction, 0.05)
