"""One test per row of the severity table in docs/detectors.md: code x condition -> warning / critical.

Critical pages a person, so it needs present or imminent user impact; these drive each detector with a
window shaped like the condition the row names and check the severity it asks for.
"""

from __future__ import annotations

from typing import Any

import pytest

from inferguard.detectors import DetectorBank, DetectorConfig, Window, cache, health, kv, latency, queue
from inferguard.detectors.persistence import Track
from inferguard.detectors.window import Condition
from inferguard.models import Signals

CFG = DetectorConfig()
T = "http://127.0.0.1:8000/metrics"


def window(rows: list[dict[str, float]], baselines: dict[str, float] | None = None, step: float = 3.0) -> Window:
    samples = tuple(Signals(target=T, ts=i * step, engine="vllm-v1", model="m", values=r) for i, r in enumerate(rows))
    return Window(samples, baselines or {})


CALM = {"kv_usage": 0.3, "requests_waiting": 0.0, "requests_running": 3.0, "preemptions_per_s": 0.0,
        "requests_finished_per_s": 1.0, "ttft_p95_s": 0.05}
BASE = {"ttft_p95_s": 0.05, "itl_p95_s": 0.02}


def at(**kw: float) -> dict[str, float]:
    return {**CALM, **kw}


ROWS: list[tuple[str, Any, list[dict[str, float]], dict[str, float], str | None]] = [
    # code, detector, window rows (oldest first), baselines, expected severity (None: does not fire)
    ("kv_pressure: at or past the threshold, nobody waiting", kv.kv_pressure,
     [CALM] * 8 + [at(kv_usage=0.9)], BASE, "warning"),
    ("kv_pressure: full with preemption bursts, no queue, latency flat", kv.kv_pressure,
     [at(kv_usage=v, preemptions_per_s=p) for v, p in [(0.4, 0), (1.0, 2.0), (0.6, 0), (1.0, 0)] * 3], BASE, "warning"),
    ("kv_pressure: full and requests queue", kv.kv_pressure,
     [CALM] * 6 + [at(kv_usage=1.0, requests_waiting=12, preemptions_per_s=3.0)] * 3, BASE, "critical"),
    ("kv_pressure: evicting for the whole window and TTFT past its limit", kv.kv_pressure,
     [at(kv_usage=0.5, preemptions_per_s=2.0, ttft_p95_s=0.9)] * 10, BASE, "critical"),
    ("kv_pressure: a projection alone", kv.kv_pressure,
     [at(kv_usage=v) for v in (0.5, 0.57, 0.64, 0.71, 0.78, 0.82)], BASE, None),
    ("queue_buildup: a steady queue", queue.queue_buildup,
     [at(requests_waiting=10.0)] * 12, BASE, "warning"),
    ("queue_buildup: a queue that keeps growing", queue.queue_buildup,
     [CALM] * 4 + [at(requests_waiting=w) for w in (4.0, 10.0, 16.0, 22.0)], BASE, "critical"),
    ("queue_buildup: requests wait seconds to be scheduled", queue.queue_buildup,
     [at(requests_waiting=10.0, queue_time_p95_s=6.0)] * 12, BASE, "critical"),
    ("queue_buildup: a queue whose wait was measured long and is not measured this interval", queue.queue_buildup,
     [at(requests_waiting=20.0, queue_time_p95_s=30.0)] * 6 + [at(requests_waiting=20.0)] * 2, BASE, "critical"),
    ("queue_buildup: the last long wait is older than the trend window", queue.queue_buildup,
     [at(requests_waiting=20.0, queue_time_p95_s=30.0)] + [at(requests_waiting=20.0)] * 12, BASE, "warning"),
    ("preemption_storm: a 2-scrape burst", queue.preemption_storm,
     [CALM] * 10 + [at(preemptions_per_s=2.0)] * 2, BASE, None),
    ("preemption_storm: sustained, little work recomputed", queue.preemption_storm,
     [at(preemptions_per_s=1.0, requests_finished_per_s=5.0, requests_waiting=12.0)] * 12, BASE, "warning"),
    ("preemption_storm: much work recomputed, nobody hurt", queue.preemption_storm,
     [at(preemptions_per_s=1.0, requests_finished_per_s=0.5)] * 12, BASE, "warning"),
    ("preemption_storm: much work recomputed and requests queue", queue.preemption_storm,
     [at(preemptions_per_s=6.0, requests_finished_per_s=2.0, requests_waiting=30.0)] * 12, BASE, "critical"),
    ("ttft_regression: past the limit", latency.ttft_regression,
     [at(ttft_p95_s=0.3)], BASE, "warning"),
    ("ttft_regression: far past the limit", latency.ttft_regression,
     [at(ttft_p95_s=0.5)], BASE, "critical"),
    ("itl_regression: past the limit", latency.itl_regression,
     [at(itl_p95_s=0.06)], BASE, "warning"),
    ("itl_regression: far past the limit", latency.itl_regression,
     [at(itl_p95_s=0.2)], BASE, "critical"),
    ("error_rate: some requests fail", health.error_rate,
     [at(error_ratio=0.1, requests_error_per_s=1.0)], BASE, "warning"),
    ("error_rate: a quarter fail", health.error_rate,
     [at(error_ratio=0.3, requests_error_per_s=3.0)], BASE, "critical"),
    ("gpu_fault: throttling or hot", health.gpu_fault,
     [at(gpu_temp_c=95.0, gpu_throttle_reasons=0.0)], BASE, "warning"),
    ("gpu_fault: XID error", health.gpu_fault,
     [at(gpu_xid_error=79.0)], BASE, "critical"),
    ("swap_activity: never critical", queue.swap_activity,
     [at(requests_swapped=4.0)], BASE, "warning"),
    ("prefix_cache_regression: never critical", cache.prefix_cache_regression,
     [at(prefix_cache_hit_ratio=0.05, prefix_cache_queries_per_s=100.0)], {"prefix_cache_hit_ratio": 0.8}, "warning"),
    ("spec_decode_collapse: never critical", cache.spec_decode_collapse,
     [at(spec_accept_ratio=0.1)], {"spec_accept_ratio": 0.7}, "warning"),
]


@pytest.mark.parametrize(("row", "fn", "rows", "baselines", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_severity_row(row: str, fn: Any, rows: list[dict[str, float]], baselines: dict[str, float],
                      expected: str | None) -> None:
    cond: Condition = fn(window(rows, baselines), CFG)
    got = cond.severity if cond.state == "fire" else None
    assert got == expected, (row, cond.state, cond.summary, cond.evidence)


def test_target_rows_unreachable_is_critical_restart_and_unidentified_warn() -> None:
    bank = DetectorBank()
    bank.target_status(T, 0, error="refused", engine=None)
    down = bank.target_status(T, 3, error="refused", engine=None)
    assert [(f.code, f.severity) for f in down] == [("endpoint_unreachable", "critical")]
    bank.target_status(T, 6, error=None, engine="unknown")
    unident = bank.target_status(T, 9, error=None, engine="unknown")
    assert [(f.code, f.severity) for f in unident] == [("engine_unidentified", "warning")]
    restart = health.engine_restart(Window((Signals(T, 0, "vllm-v1", "m", {}, restarted=True),)), CFG)
    missing = health.metrics_missing(Window((Signals(T, 0, "vllm-v1", "m", {}, missing=("kv_usage",)),)), CFG)
    assert (restart.severity, missing.severity) == ("warning", "warning")


# --- severity hysteresis (persistence of the level itself) ---------------------------------------------

def run(levels: str, *, integrated: bool = False) -> str:
    """Feed a Track a string of evaluations (w = fire warning, c = fire critical, h = hold); return the
    sustained severity after each, as a string of w/c/- (inactive)."""
    t, out = Track(), ""
    for i, ch in enumerate(levels):
        state = "hold" if ch == "h" else "fire"
        sev = "critical" if ch == "c" else "warning"
        # As the bank does: integrated critical evidence needs one evaluation.
        fire_after = 1 if integrated and sev == "critical" else CFG.fire_after
        t.step(Condition(state, sev, integrated=integrated), float(i), fire_after, CFG.clear_after)
        out += (t.severity[0] if t.active else "-")
    return out


def test_a_critical_blip_does_not_escalate() -> None:
    assert run("wwwcwwww") == "-wwwwwww"


def test_critical_escalates_after_its_own_persistence() -> None:
    assert run("wwcc") == "-wwc"
    assert run("wwcwc") == "-wwwc"  # two of the last three: noisy but sustained


def test_alternating_levels_settle_on_the_highest_sustained_and_stop_flapping() -> None:
    assert run("ccwcwcwcwc") == "-ccccccccc"


def test_falling_back_to_warning_needs_three_calm_evaluations() -> None:
    assert run("ccwwhwww") == "-cccwwww"  # w, w, h: three evaluations that were not critical


def test_opening_at_critical_needs_critical_to_have_held() -> None:
    assert run("wc") == "-w"
    assert run("cc") == "-c"
    assert run("c", integrated=True) == "c"  # integrated counter evidence pages on its first evaluation
