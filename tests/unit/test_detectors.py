"""Detectors and persistence, on sequences shaped like what the real vLLM did (shared/REAL_VLLM.md)."""

from __future__ import annotations

import pytest

from inferguard.detectors import DetectorBank, DetectorConfig
from inferguard.detectors.bank import registry
from inferguard.models import Signals

T = "http://127.0.0.1:8000/metrics"


def sig(ts: float, restarted: bool = False, missing: tuple[str, ...] = (), **values: float) -> Signals:
    return Signals(target=T, ts=ts, engine="vllm-v1", model="tiny", values=values, restarted=restarted,
                   missing=missing)


def codes(findings: list) -> set[str]:
    return {f.code for f in findings}


def feed(bank: DetectorBank, rows: list[dict], start: float = 0.0, step: float = 3.0) -> list[set[str]]:
    return [codes(bank.observe(sig(start + i * step, **row))) for i, row in enumerate(rows)]


HEALTHY = {"kv_usage": 0.1, "requests_running": 2, "requests_waiting": 0, "preemptions_per_s": 0.0,
           "ttft_p95_s": 0.01, "prefix_cache_hit_ratio": 0.9, "prefix_cache_queries_per_s": 500.0}


def test_noisy_real_overload_fires_within_two_samples_and_holds() -> None:
    bank = DetectorBank()
    # KV swinging 0.52–1.0 with ~15 preemptions/s and 35–39 waiting: the real 24-block overload.
    overload = [{"kv_usage": k, "requests_waiting": w, "preemptions_per_s": 15.0, "requests_running": 5}
                for k, w in [(0.55, 36), (1.0, 38), (0.52, 39), (0.97, 35), (0.6, 37), (0.99, 38)]]
    seen = feed(bank, [HEALTHY] * 4 + overload)
    assert seen[:4] == [set()] * 4
    assert {"kv_pressure", "preemption_storm", "queue_buildup"} <= seen[5]  # second overload sample
    assert all("kv_pressure" in s for s in seen[5:])  # the swings back to 0.5 do not clear it


def test_a_single_blip_does_not_fire() -> None:
    bank = DetectorBank()
    blip = dict(HEALTHY, kv_usage=0.95, requests_waiting=12)
    seen = feed(bank, [HEALTHY] * 3 + [blip] + [HEALTHY] * 4)
    assert all(s == set() for s in seen)


def test_clearing_needs_the_clear_condition_for_three_evaluations() -> None:
    bank = DetectorBank()
    hot = {"kv_usage": 0.95, "requests_waiting": 20, "preemptions_per_s": 3.0}
    cool = {"kv_usage": 0.2, "requests_waiting": 0, "preemptions_per_s": 0.0}
    between = {"kv_usage": 0.8, "requests_waiting": 0, "preemptions_per_s": 0.0}
    seen = feed(bank, [hot, hot, between, between, cool, cool, cool, cool, cool])
    assert "kv_pressure" in seen[1]
    assert "kv_pressure" in seen[3]  # 0.8 is inside the hysteresis band: still active
    # peak over the last 3 samples must fall below 0.70, then 3 clear evaluations.
    first_clear = next(i for i, s in enumerate(seen) if i > 1 and "kv_pressure" not in s)
    assert first_clear >= 7


def test_admission_overload_is_a_queue_not_kv_pressure() -> None:
    bank = DetectorBank()
    rows = [dict(HEALTHY, ttft_p95_s=0.004)] * 4 + [
        {"kv_usage": 0.0003, "requests_running": 2, "requests_waiting": 28, "preemptions_per_s": 0.0,
         "ttft_p95_s": 2.9}] * 3
    seen = feed(bank, rows)
    assert {"queue_buildup", "ttft_regression"} <= seen[-1]
    assert not {"kv_pressure", "preemption_storm"} & seen[-1]


def test_missing_metric_is_unknown_never_zero() -> None:
    bank = DetectorBank()
    # No kv_usage at all: kv_pressure can neither fire nor clear, and waiting alone is judged.
    seen = feed(bank, [{"requests_waiting": 30}] * 3)
    assert "kv_pressure" not in seen[-1] and "queue_buildup" in seen[-1]


def test_a_kv_projection_is_not_a_finding_but_makes_the_next_one_sooner() -> None:
    bank = DetectorBank()
    climb = [{"kv_usage": v, "requests_waiting": 0, "preemptions_per_s": 0.0}
             for v in (0.5, 0.57, 0.64, 0.71, 0.78, 0.82)]
    seen = feed(bank, climb, step=10.0)
    assert all("kv_pressure" not in s for s in seen), "a forecast alone opened an incident"
    # The level crosses the threshold right after the projection: one sample is enough.
    crossed = codes(bank.observe(sig(60.0, kv_usage=0.88, requests_waiting=0, preemptions_per_s=0.0)))
    assert "kv_pressure" in crossed
    # Without the projection before it, the same crossing needs its two evaluations.
    fresh = DetectorBank()
    feed(fresh, [dict(HEALTHY, kv_usage=0.6)] * 3, step=10.0)
    assert "kv_pressure" not in codes(fresh.observe(sig(60.0, kv_usage=0.88, requests_waiting=0,
                                                       preemptions_per_s=0.0)))


def test_a_kv_projection_confirmed_by_preemptions_fires() -> None:
    bank = DetectorBank()
    climb = [{"kv_usage": v, "requests_waiting": 0, "preemptions_per_s": 0.1}
             for v in (0.5, 0.57, 0.64, 0.71, 0.78, 0.82)]
    seen = feed(bank, climb, step=10.0)
    assert "kv_pressure" in seen[-1]
    kv = next(f for f in bank.observe(sig(60.0, kv_usage=0.84, requests_waiting=0, preemptions_per_s=0.1))
              if f.code == "kv_pressure")
    assert any(e.signal == "kv_time_to_full_s" for e in kv.evidence) and kv.severity == "warning"


def test_ttft_baseline_learns_while_healthy_and_freezes_during_incidents() -> None:
    bank = DetectorBank()
    feed(bank, [dict(HEALTHY, ttft_p95_s=0.02)] * 5)
    bad = dict(HEALTHY, ttft_p95_s=3.0, requests_waiting=30)
    seen = feed(bank, [bad] * 6, start=100)
    assert "ttft_regression" in seen[-1]
    # While unhealthy the 3 s values were not learned: the baseline is still ~20 ms.
    st = bank._streams[(T, "tiny")]
    assert st.baselines["ttft_p95_s"].value == pytest.approx(0.02)


def test_regressions_wait_out_a_restart() -> None:
    bank = DetectorBank()
    feed(bank, [dict(HEALTHY, ttft_p95_s=0.02)] * 5)
    after = [dict(HEALTHY, ttft_p95_s=1.5)]
    first = bank.observe(sig(100, restarted=True, **after[0]))
    assert "engine_restart" in codes(first)
    assert "ttft_regression" not in codes(bank.observe(sig(103, **after[0])))


def test_prefix_cache_regression_against_its_baseline() -> None:
    bank = DetectorBank()
    seen = feed(bank, [HEALTHY] * 4 + [dict(HEALTHY, prefix_cache_hit_ratio=0.05)] * 3)
    assert "prefix_cache_regression" in seen[-1]
    # No traffic: nothing to judge, so no regression is raised by an idle engine.
    bank2 = DetectorBank()
    seen2 = feed(bank2, [HEALTHY] * 4 + [dict(HEALTHY, prefix_cache_hit_ratio=0.0,
                                                prefix_cache_queries_per_s=0.0)] * 3)
    assert "prefix_cache_regression" not in seen2[-1]


def test_unreachable_needs_two_failures_and_clears_at_once() -> None:
    bank = DetectorBank()
    assert bank.target_status(T, 0, error="refused", engine=None) == []
    down = bank.target_status(T, 3, error="refused", engine=None)
    assert codes(down) == {"endpoint_unreachable"} and down[0].severity == "critical"
    assert bank.target_status(T, 6, error=None, engine="vllm-v1") == []


def test_unknown_engine_is_reported() -> None:
    bank = DetectorBank()
    bank.target_status(T, 0, error=None, engine="unknown")
    assert codes(bank.target_status(T, 3, error=None, engine="unknown")) == {"engine_unidentified"}


def test_gpu_fault_on_xid() -> None:
    bank = DetectorBank()
    s = Signals(target=T, ts=1, engine="dcgm", model="gpu0", values={"gpu_xid_error": 79.0, "gpu_temp_c": 60.0})
    bank.observe(s)
    s2 = Signals(target=T, ts=2, engine="dcgm", model="gpu0", values={"gpu_xid_error": 79.0, "gpu_temp_c": 60.0})
    found = bank.observe(s2)
    assert codes(found) == {"gpu_fault"} and found[0].severity == "critical"


def test_registry_refuses_duplicates_and_config_refuses_unknown_thresholds() -> None:
    def noop(w, c):  # type: ignore[no-untyped-def]
        raise AssertionError

    with pytest.raises(ValueError, match="duplicate"):
        registry(("a", noop), ("a", noop))
    with pytest.raises(ValueError, match="kv_treshold"):
        DetectorConfig().with_overrides({"kv_treshold": 0.9})


def test_counter_evidence_pages_at_once_when_critical_but_gauges_never_do() -> None:
    # Recorded on the real vLLM (tests/data/vllm_kv_overload): the gauges read 0 mid-overload while
    # the preemption counter and the queue-time histogram showed the storm.
    bank = DetectorBank()
    feed(bank, [dict(HEALTHY, requests_finished_per_s=3.0)] * 4)
    first = codes(bank.observe(sig(100, kv_usage=0.0, requests_waiting=0, requests_running=0,
                                    preemptions_per_s=21.0, queue_time_p95_s=9.2, requests_finished_per_s=2.0)))
    assert {"kv_pressure", "preemption_storm", "queue_buildup"} <= first
    bank2 = DetectorBank()
    feed(bank2, [HEALTHY] * 4)
    # A critical *gauge* reading alone is a snapshot: it must be seen twice.
    assert "queue_buildup" not in codes(bank2.observe(sig(100, **dict(HEALTHY, requests_waiting=80))))


def test_warning_level_rates_need_two_of_three() -> None:
    bank = DetectorBank()
    feed(bank, [HEALTHY] * 4)
    mild = dict(HEALTHY, preemptions_per_s=2.0)
    seen = feed(bank, [mild, HEALTHY, mild], start=100)
    assert "preemption_storm" not in seen[0] and "preemption_storm" in seen[2]


def test_a_high_kv_gauge_does_not_slow_down_a_critical_preemption_storm() -> None:
    # Preempting most of the work while requests wait: critical, and counter evidence pages at once.
    bank = DetectorBank()
    feed(bank, [dict(HEALTHY, requests_finished_per_s=2.0)] * 4)
    first = bank.observe(sig(100, kv_usage=0.9, requests_waiting=12, requests_running=20,
                             preemptions_per_s=8.0, requests_finished_per_s=2.0))
    assert {f.code: f.severity for f in first}.get("kv_pressure") == "critical"


def test_hot_but_coping_is_a_kv_warning_and_no_storm() -> None:
    # --max-num-seqs 3 on a 24-block cache: KV 0.3-1.0, preemption bursts of 2/s (0.25/s on average),
    # no queue, latency unchanged. Efficient use of the GPU: kv_pressure warning at most.
    bank = DetectorBank()
    feed(bank, [dict(HEALTHY, requests_finished_per_s=0.4)] * 5)
    rows = []
    for i in range(40):
        burst = i % 16 in (0, 1)  # two scrapes at 2/s every 48 s: 0.25/s on average
        rows.append(dict(HEALTHY, kv_usage=(0.3, 0.6, 0.9, 1.0)[i % 4], requests_waiting=1 if burst else 0,
                         preemptions_per_s=2.0 if burst else 0.0, requests_finished_per_s=0.4))
    severities: set[str] = set()
    for i, row in enumerate(rows):
        for f in bank.observe(sig(15 + 3 * i, **row)):
            assert f.code != "preemption_storm", (i, f.summary)
            severities.add(f.severity)
    assert severities <= {"warning"}


def test_a_kv_forecast_is_a_proactive_advisory_not_an_incident() -> None:
    import anyio

    from inferguard.brain import LocalBrain, build_proactive_payload

    bank = DetectorBank()
    climb = [{"kv_usage": v, "requests_running": 8.0, "requests_waiting": 0.0, "preemptions_per_s": 0.0}
             for v in (0.4, 0.46, 0.52, 0.58, 0.64, 0.7, 0.76, 0.8)]
    seen = feed(bank, climb, step=10.0)
    assert all("kv_pressure" not in s for s in seen)
    window = [{"ts": i * 10.0, "values": row} for i, row in enumerate(climb)]
    answer = anyio.run(LocalBrain().investigate, build_proactive_payload(T, "vllm-v1", "tiny", window, []))
    adv = next(a for a in answer["advisories"] if a["action"] == "throttle_concurrency")
    assert adv["proactive"] is True and adv["horizon"] in ("now", "minutes") and 0 < adv["confidence"] <= 1


@pytest.mark.parametrize("interval_s", [3.0, 1.0, 0.5])
def test_a_steady_rate_reads_the_same_at_any_scrape_interval(interval_s: float) -> None:
    # The bank keeps a bounded number of samples: at fast scrapes they cover less than the trend window,
    # and the rate must be averaged over what they cover (0.8/s stays 0.8/s, not 0.8 x covered/30 s).
    from inferguard.detectors.window import Condition, Window

    seen: list[float | None] = []

    def probe(window: Window, cfg: DetectorConfig) -> Condition:
        seen.append(window.rate_over("preemptions_per_s", cfg.trend_window_s))
        return Condition("unknown")

    bank = DetectorBank(DetectorConfig(), detectors={"probe": probe})
    for i in range(200):
        bank.observe(Signals("t", i * interval_s, "vllm-v1", "m", {"preemptions_per_s": 0.8}))
    assert seen[-1] == pytest.approx(0.8)
