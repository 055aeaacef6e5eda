"""KV-cache pressure, with a leading indicator (time until the cache is full at the present slope)."""

from __future__ import annotations

from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.window import CLEAR, HOLD, UNKNOWN, Condition, Window, ev


def kv_pressure(w: Window, cfg: DetectorConfig) -> Condition:
    recent = w.recent("kv_usage", cfg.kv_peak_samples)
    if not recent:
        return UNKNOWN
    now, peak = recent[-1], max(recent)
    preempt = w.latest("preemptions_per_s") or 0.0
    waiting = w.latest("requests_waiting") or 0.0
    # Under real overload vLLM's KV usage swings 0.5–1.0 as requests are preempted and readmitted: a
    # high recent peak counts when the engine is also visibly short of cache (preempting or queueing).
    pressured = now >= cfg.kv_threshold or (peak >= cfg.kv_threshold and (preempt > 0 or waiting > 0))
    evidence = [
        ev("kv_usage", now, cfg.kv_threshold, ">="),
        ev("kv_usage_peak", peak, cfg.kv_threshold, ">=", f"max of last {len(recent)} samples"),
    ]
    if preempt:
        evidence.append(ev("preemptions_per_s", preempt))
    if waiting:
        evidence.append(ev("requests_waiting", waiting))
    if pressured:
        critical = peak >= cfg.kv_critical and (preempt > 0 or waiting > 0)
        return Condition("fire", "critical" if critical else "warning",
                         f"KV cache at {now:.0%} (peak {peak:.0%})", tuple(evidence))
    ttf = _time_to_full(w, cfg)
    if ttf is not None and ttf <= cfg.kv_time_to_full_warn_s:
        evidence.append(ev("kv_time_to_full_s", ttf, cfg.kv_time_to_full_warn_s, "<=",
                           "at the present slope"))
        return Condition("fire", "warning", f"KV cache {now:.0%}, full in ~{ttf:.0f}s at this slope",
                         tuple(evidence))
    if peak < cfg.kv_clear and preempt == 0:
        return CLEAR
    return HOLD


def _time_to_full(w: Window, cfg: DetectorConfig) -> float | None:
    now = w.latest("kv_usage")
    slope = w.slope("kv_usage", 5)
    # Only extrapolate a clear climb from a meaningful level; noise near empty says nothing.
    if now is None or slope is None or slope <= 0 or now < 0.5:
        return None
    return (1.0 - now) / slope
