"""Request errors, engine restarts, missing metrics and GPU faults."""

from __future__ import annotations

from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.window import CLEAR, UNKNOWN, Condition, Window, ev
from inferguard.models import Severity

# DCGM clock-event bits that mean the hardware is protecting itself, not idling:
# SW thermal 0x20, HW slowdown 0x08, HW thermal 0x40, HW power brake 0x80.
_BAD_THROTTLE = 0x08 | 0x20 | 0x40 | 0x80


def error_rate(w: Window, cfg: DetectorConfig) -> Condition:
    ratio = w.latest("error_ratio")
    errors = w.latest("requests_error_per_s")
    if ratio is None:
        return UNKNOWN
    evidence = (ev("error_ratio", ratio, cfg.error_ratio, ">="), ev("requests_error_per_s", errors))
    if ratio >= cfg.error_ratio and (errors or 0) > 0:
        sev: Severity = "critical" if ratio >= cfg.error_ratio_critical else "warning"
        return Condition("fire", sev, f"{ratio:.0%} of requests failing", evidence)
    if ratio < cfg.error_ratio / 2:
        return CLEAR
    return Condition("hold")


def engine_restart(w: Window, cfg: DetectorConfig) -> Condition:
    # An event, not a level: it stays raised for a few evaluations after the counters reset.
    recent = w.samples[-cfg.restart_hold:]
    if any(s.restarted for s in recent):
        return Condition("fire", "warning", "engine restarted (counters reset)",
                         (ev("counter_reset", 1.0, note="a counter went backwards or _created changed"),))
    return CLEAR


def metrics_missing(w: Window, cfg: DetectorConfig) -> Condition:
    missing = w.last.missing
    if missing:
        return Condition("fire", "warning", f"core metrics missing: {', '.join(missing)}",
                         tuple(ev(name, None, note="absent from /metrics") for name in missing))
    return CLEAR


def gpu_fault(w: Window, cfg: DetectorConfig) -> Condition:
    xid = w.latest("gpu_xid_error")
    dbe = w.latest("gpu_ecc_dbe_per_s")
    throttle = w.latest("gpu_throttle_reasons")
    temp = w.latest("gpu_temp_c")
    if xid is None and dbe is None and throttle is None and temp is None:
        return UNKNOWN
    if (xid or 0) > 0 or (dbe or 0) > 0:
        return Condition("fire", "critical", f"GPU error (XID {xid or 0:.0f}, ECC DBE {dbe or 0:.2g}/s)",
                         (ev("gpu_xid_error", xid, 0.0, ">"), ev("gpu_ecc_dbe_per_s", dbe, 0.0, ">")))
    hot = temp is not None and temp >= cfg.gpu_temp_c
    throttled = throttle is not None and int(throttle) & _BAD_THROTTLE
    if hot or throttled:
        return Condition("fire", "warning", "GPU throttling or overheating",
                         (ev("gpu_temp_c", temp, cfg.gpu_temp_c, ">="),
                          ev("gpu_throttle_reasons", throttle, note="thermal/power-brake bits")))
    return CLEAR
