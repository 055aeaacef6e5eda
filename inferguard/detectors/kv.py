"""KV-cache pressure, with a leading indicator (time until the cache is full at the present slope)."""

from __future__ import annotations

from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.impact import user_impact
from inferguard.detectors.window import CLEAR, HOLD, UNKNOWN, Condition, Window, ev
from inferguard.models import Evidence


def kv_pressure(w: Window, cfg: DetectorConfig) -> Condition:
    recent = w.recent("kv_usage", cfg.kv_peak_samples)
    if not recent:
        return UNKNOWN
    now, peak = recent[-1], max(recent)
    preempt = w.latest("preemptions_per_s") or 0.0
    # A counter, so integrated; it counts only while preemptions are still happening (see preemption_storm).
    sustained = (w.rate_over("preemptions_per_s", cfg.trend_window_s) or 0.0) if preempt > 0 else 0.0
    waiting = w.latest("requests_waiting") or 0.0
    context = _context(preempt, waiting, cfg)
    usage = [ev("kv_usage", now, cfg.kv_threshold, ">="),
             ev("kv_usage_peak", peak, cfg.kv_threshold, ">=", f"max of last {len(recent)} samples")]
    # Critical only when the cache is exhausted (full, or evicting for the whole window) *and* users feel
    # it; near-full with occasional preemptions and nobody waiting is a warning at most.
    exhausted = peak >= cfg.kv_critical or sustained >= cfg.preemption_rate
    impact = user_impact(w, cfg) if exhausted else ()
    # Under real overload vLLM's KV usage swings 0.5–1.0 as requests are preempted and readmitted: a
    # high recent peak counts when the engine is also visibly short of cache (preempting or queueing).
    if now >= cfg.kv_threshold or (peak >= cfg.kv_threshold and (preempt > 0 or waiting > 0)):
        ttf = _time_to_full(w)
        leading = (ev("kv_time_to_full_s", ttf, cfg.kv_time_to_full_warn_s, "<=", "at the present slope"),) \
            if ttf is not None and ttf <= cfg.kv_time_to_full_warn_s else ()
        return Condition("fire", "critical" if impact else "warning", f"KV cache at {now:.0%} (peak {peak:.0%})",
                         (*usage, *leading, *context, *impact),
                         integrated=bool(impact) and sustained >= cfg.preemption_rate)
    if sustained >= cfg.preemption_rate:
        # vLLM preempts only when the KV cache cannot hold the running batch, and the counter integrates
        # the whole interval, while the usage gauge is a snapshot that can read 0 mid-overload.
        return Condition("fire", "critical" if impact else "warning",
                         f"KV cache exhausted: {sustained:.1f} preemptions/s over {cfg.trend_window_s:g}s "
                         f"(usage gauge {now:.0%})", (*context, *usage, *impact), integrated=True)
    ttf = _time_to_full(w)
    if ttf is not None and ttf <= cfg.kv_time_to_full_warn_s:
        projection = (*usage, ev("kv_time_to_full_s", ttf, cfg.kv_time_to_full_warn_s, "<=", "at the present slope"))
        # A projection is advice (the brain's proactive W1-W4), not an incident: it fires only when the
        # engine already shows the shortage (preempting, or a queue); otherwise it is a leading indicator.
        if preempt > 0 or waiting >= cfg.queue_threshold:
            return Condition("fire", "warning", f"KV cache {now:.0%}, full in ~{ttf:.0f}s at this slope",
                             (*projection, *context))
        return Condition("hold", "warning", f"KV cache {now:.0%}, full in ~{ttf:.0f}s at this slope",
                         projection, lead=True)
    if peak < cfg.kv_clear and preempt == 0:
        return CLEAR
    return HOLD


def _context(preempt: float, waiting: float, cfg: DetectorConfig) -> tuple[Evidence, ...]:
    out = []
    if preempt:
        out.append(ev("preemptions_per_s", preempt, cfg.preemption_rate, ">=",
                      "vLLM preempts only when the KV cache runs out of blocks"))
    if waiting:
        out.append(ev("requests_waiting", waiting))
    return tuple(out)


def _time_to_full(w: Window) -> float | None:
    now = w.latest("kv_usage")
    slope = w.slope("kv_usage", 5)
    # Only extrapolate a clear climb from a meaningful level; noise near empty says nothing.
    if now is None or slope is None or slope <= 0 or now < 0.5:
        return None
    return (1.0 - now) / slope
