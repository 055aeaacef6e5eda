"""Latency regressions against a baseline learned while the target was healthy."""

from __future__ import annotations

from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.window import CLEAR, HOLD, UNKNOWN, Condition, Window, ev
from inferguard.models import Severity


def _regression(w: Window, signal: str, label: str, multiplier: float, floor: float) -> Condition:
    value = w.latest(signal)
    base = w.baselines.get(signal)
    if value is None or base is None or w.warming_up:
        return UNKNOWN
    # The floor keeps a 4 ms -> 9 ms wobble from paging anyone; the multiplier is the operator's.
    limit = max(base * multiplier, floor)
    evidence = (ev(signal, value, limit, ">", f"baseline {base:.4g}s x{multiplier:g}, floor {floor:g}s"),
                ev(f"{signal}_baseline", base))
    if value > limit:
        sev: Severity = "critical" if value > 2 * limit else "warning"
        return Condition("fire", sev, f"{label} p95 {value:.3g}s vs baseline {base:.3g}s", evidence)
    if value <= max(base * (1 + (multiplier - 1) / 2), floor * 0.75):
        return CLEAR
    return HOLD


def ttft_regression(w: Window, cfg: DetectorConfig) -> Condition:
    return _regression(w, "ttft_p95_s", "TTFT", cfg.ttft_multiplier, cfg.ttft_min_s)


def itl_regression(w: Window, cfg: DetectorConfig) -> Condition:
    return _regression(w, "itl_p95_s", "inter-token latency", cfg.itl_multiplier, cfg.itl_min_s)
