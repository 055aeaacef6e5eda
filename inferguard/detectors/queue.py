"""Scheduler back-pressure: queue build-up, preemption storms, swapping (vLLM V0)."""

from __future__ import annotations

from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.impact import recomputed_share, user_impact
from inferguard.detectors.window import CLEAR, HOLD, UNKNOWN, Condition, Window, ev
from inferguard.models import Severity


def queue_buildup(w: Window, cfg: DetectorConfig) -> Condition:
    waiting = w.latest("requests_waiting")
    qt = w.latest("queue_time_p95_s")
    if waiting is None and qt is None:
        return UNKNOWN
    running = w.latest("requests_running")
    evidence = []
    if waiting is not None:
        evidence.append(ev("requests_waiting", waiting, cfg.queue_threshold, ">="))
    if qt is not None:
        evidence.append(ev("queue_time_p95_s", qt, cfg.queue_time_s, ">=", "over the scrape window"))
    if running is not None:
        evidence.append(ev("requests_running", running))
    by_gauge = waiting is not None and waiting >= cfg.queue_threshold
    by_time = qt is not None and qt >= cfg.queue_time_s
    if by_gauge or by_time:
        # Critical: users wait seconds before their request starts, or the queue keeps growing.
        grew = w.growth("requests_waiting", cfg.trend_window_s)
        growing = by_gauge and grew is not None and grew >= cfg.queue_threshold
        if growing:
            evidence.append(ev("requests_waiting_growth", grew, cfg.queue_threshold, ">=",
                               f"rise over the last {cfg.trend_window_s:g}s"))
        # The queue-time histogram only has observations in intervals where a request left the queue; in
        # the others the wait is unknown, not short. While the gauge still shows the queue, the newest
        # measurement within the trend window stands (unknown is not evidence of calm).
        measured = qt if qt is not None or not by_gauge else w.last_known("queue_time_p95_s", cfg.trend_window_s)
        time_critical = measured is not None and measured >= cfg.queue_time_critical_s
        if time_critical and qt is None:
            evidence.append(ev("queue_time_p95_s", measured, cfg.queue_time_critical_s, ">=",
                               "newest measurement in the trend window"))
        sev: Severity = "critical" if growing or time_critical else "warning"
        what = f"{waiting:.0f} requests waiting" if by_gauge and waiting is not None else f"queue time p95 {qt:.2f}s"
        return Condition("fire", sev, what, tuple(evidence), integrated=time_critical)
    if (waiting is None or waiting <= cfg.queue_threshold / 2) and (qt is None or qt < cfg.queue_time_s / 2):
        return CLEAR
    return HOLD


def preemption_storm(w: Window, cfg: DetectorConfig) -> Condition:
    # Judged over the trend window: a real engine running hot but coping preempts in 2/s bursts that
    # average 0.25/s, and that is the scheduler doing its job, not a storm.
    rate = w.rate_over("preemptions_per_s", cfg.trend_window_s)
    now = w.latest("preemptions_per_s")
    if rate is None or now is None:
        return UNKNOWN
    evidence = [ev("preemptions_per_s", rate, cfg.preemption_rate, ">=", f"mean over {cfg.trend_window_s:g}s")]
    # A storm is sustained over the window *and* still going: once an interval passes without a single
    # preemption the window's memory of it is no reason to keep it open.
    if rate >= cfg.preemption_rate and now > 0:
        share = recomputed_share(w)
        impact = user_impact(w, cfg)
        if share is not None:
            evidence.append(ev("preemptions_per_finished_request", share if share != float("inf") else None,
                               cfg.preemption_share_critical, ">=", "share of work recomputed"))
        heavy = share is not None and share >= cfg.preemption_share_critical
        sev: Severity = "critical" if heavy and impact else "warning"
        return Condition("fire", sev, f"{rate:.1f} preemptions/s", (*evidence, *impact), integrated=True)
    if now == 0 or rate < cfg.preemption_rate / 4:
        return CLEAR
    return HOLD


def swap_activity(w: Window, cfg: DetectorConfig) -> Condition:
    swapped = w.latest("requests_swapped")
    if swapped is None:
        return UNKNOWN
    if swapped > 0:
        return Condition("fire", "warning", f"{swapped:.0f} requests swapped to CPU",
                         (ev("requests_swapped", swapped, 0.0, ">"),))
    return CLEAR
