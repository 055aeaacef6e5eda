"""Detector thresholds. Defaults are the operator names from issue #2 where they exist."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from difflib import get_close_matches
from typing import Any


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    # KV cache (KV_ALERT_THRESHOLD). Real overload swings 0.5–1.0, so firing looks at the recent peak
    # with corroboration, and clearing needs the peak to fall well below (hysteresis).
    kv_threshold: float = 0.85
    kv_clear: float = 0.70
    kv_critical: float = 0.97  # "full": no free block for the next token of the batch
    kv_peak_samples: int = 3
    kv_time_to_full_warn_s: float = 120.0
    # Queue: the waiting gauge, or the window's queue-time p95 (a histogram, so it integrates the interval).
    queue_threshold: float = 8.0
    queue_time_s: float = 1.0
    queue_time_critical_s: float = 5.0  # a user waits this long before the engine even starts the request
    # Preemptions per second, judged over the trend window (a 2-scrape burst is not a storm).
    preemption_rate: float = 0.5
    # Critical needs this share of work recomputed (preemptions per finished request) *and* user impact.
    preemption_share_critical: float = 0.5
    # The window rates and growth are judged over: long enough that one burst is not a trend.
    trend_window_s: float = 30.0
    # Latency regressions against a learned baseline (TTFT_ALERT_MULTIPLIER).
    ttft_multiplier: float = 2.0
    ttft_min_s: float = 0.2
    itl_multiplier: float = 2.0
    itl_min_s: float = 0.05
    # Prefix cache: hit ratio below this fraction of its baseline (baseline must be meaningful).
    prefix_drop_fraction: float = 0.5
    prefix_min_baseline: float = 0.2
    # Errors.
    error_ratio: float = 0.05
    error_ratio_critical: float = 0.25
    # Speculative decoding acceptance below this fraction of its baseline.
    spec_drop_fraction: float = 0.5
    # GPU.
    gpu_temp_c: float = 90.0
    # Persistence (evaluations in a row) and hysteresis.
    fire_after: int = 2
    clear_after: int = 3
    unreachable_after: int = 2
    restart_hold: int = 3
    warmup_after_restart: int = 3
    baseline_min_samples: int = 3
    baseline_alpha: float = 0.2

    def with_overrides(self, overrides: dict[str, Any]) -> DetectorConfig:
        """Per-target thresholds from the targets file; an unknown key or a value outside its range is
        a ValueError naming it."""
        kinds = {f.name: f.type for f in fields(self)}
        bad = sorted(set(overrides) - set(kinds))
        if bad:
            known = threshold_names()
            guesses = [f"{b} (did you mean {m[0]}?)" if (m := get_close_matches(b, known, n=1)) else b for b in bad]
            raise ValueError(f"unknown threshold(s): {', '.join(guesses)}; valid names: {', '.join(known)}")
        clean: dict[str, Any] = {}
        for name, value in overrides.items():
            integer = kinds[name] in (int, "int")
            _check_threshold(name, value, integer=integer)
            clean[name] = int(value) if integer else float(value)  # a targets file's 2.0 counts as 2
        out = replace(self, **clean)
        if "kv_threshold" in overrides and "kv_clear" not in overrides:
            # Hysteresis: clearing needs the peak well below where it fires.
            out = replace(out, kv_clear=min(out.kv_clear, out.kv_threshold - 0.05))
        if not out.kv_clear < out.kv_threshold <= out.kv_critical:
            raise ValueError(f"thresholds: need kv_clear < kv_threshold <= kv_critical, got "
                             f"{out.kv_clear:g}, {out.kv_threshold:g}, {out.kv_critical:g}")
        return out


def threshold_names() -> list[str]:
    """Every name a targets file may set under ``thresholds:``, in declaration order (docs list the same)."""
    return [f.name for f in fields(DetectorConfig)]


# Fractions of 1 (ratios, or fractions of a baseline); multipliers above 1; everything else > 0.
_FRACTIONS = frozenset({"kv_threshold", "kv_clear", "kv_critical", "prefix_drop_fraction", "prefix_min_baseline",
                        "error_ratio", "error_ratio_critical", "spec_drop_fraction", "baseline_alpha"})
_MULTIPLIERS = frozenset({"ttft_multiplier", "itl_multiplier"})


def _check_threshold(name: str, value: Any, *, integer: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"thresholds.{name}: must be a finite number, got {value!r}")
    if integer and (value != int(value) or value < 1):
        raise ValueError(f"thresholds.{name}: must be a whole number >= 1, got {value!r}")
    if name in _FRACTIONS and not 0 < value <= 1:
        raise ValueError(f"thresholds.{name}: must be within (0, 1], got {value!r}")
    if name in _MULTIPLIERS and not value > 1:
        raise ValueError(f"thresholds.{name}: must be greater than 1, got {value!r}")
    if not value > 0:
        raise ValueError(f"thresholds.{name}: must be greater than 0, got {value!r}")
