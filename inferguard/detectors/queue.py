"""Scheduler back-pressure: queue build-up, preemption storms, swapping (vLLM V0)."""

from __future__ import annotations

from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.window import CLEAR, HOLD, UNKNOWN, Condition, Window, ev
from inferguard.models import Severity


def queue_buildup(w: Window, cfg: DetectorConfig) -> Condition:
    waiting = w.latest("requests_waiting")
    if waiting is None:
        return UNKNOWN
    running = w.latest("requests_running")
    evidence = [ev("requests_waiting", waiting, cfg.queue_threshold, ">=")]
    if running is not None:
        evidence.append(ev("requests_running", running))
    qt = w.latest("queue_time_p95_s")
    if qt is not None:
        evidence.append(ev("queue_time_p95_s", qt))
    if waiting >= cfg.queue_threshold:
        sev: Severity = "critical" if waiting >= cfg.queue_critical else "warning"
        return Condition("fire", sev, f"{waiting:.0f} requests waiting", tuple(evidence))
    if waiting <= cfg.queue_threshold / 2:
        return CLEAR
    return HOLD


def preemption_storm(w: Window, cfg: DetectorConfig) -> Condition:
    rate = w.latest("preemptions_per_s")
    if rate is None:
        return UNKNOWN
    evidence = (ev("preemptions_per_s", rate, cfg.preemption_rate, ">="),)
    if rate >= cfg.preemption_rate:
        sev: Severity = "critical" if rate >= cfg.preemption_critical else "warning"
        return Condition("fire", sev, f"{rate:.1f} preemptions/s", evidence)
    if rate < cfg.preemption_rate / 4:
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
