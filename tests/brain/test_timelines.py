"""The rules on windows rebuilt from real vLLM recordings (tests/data/vllm_*.jsonl.gz, recorded on
this machine by the e2e harness). Skips while a recording is not there yet."""

from __future__ import annotations

from typing import Any

import pytest

from rlm_agent import advise
from rlm_agent.evals.timeline import load, parse, phase, quantile, window

# scenario -> phase -> (expected root cause, required advisories, forbidden advisories)
EXPECT: dict[str, dict[str, tuple[str, set[str], set[str]]]] = {
    "kv_overload": {
        "healthy": ("insufficient_evidence", set(), {"throttle_concurrency", "raise_batch_capacity"}),
        "overload": ("kv_cache_exhaustion", {"throttle_concurrency"}, {"raise_batch_capacity"}),
        "recovery": ("insufficient_evidence", set(), {"throttle_concurrency", "scale_out"}),
    },
    "admission_overload": {
        "healthy": ("insufficient_evidence", set(), {"throttle_concurrency", "raise_batch_capacity"}),
        "overload": ("admission_overload", {"raise_batch_capacity"}, {"throttle_concurrency", "scale_out"}),
        "recovery": ("insufficient_evidence", set(), {"raise_batch_capacity", "throttle_concurrency"}),
    },
    "prefix_churn": {
        "shared_prefix": ("insufficient_evidence", set(), {"recommend_compaction", "flush_session_radix"}),
        # Shared prefixes (hit ratio 0.93), then random prompts of the same length (hit ratio 0).
        "shared_prefix+random": ("prefix_cache_thrash", set(),
                                 {"recommend_compaction", "flush_session_radix", "throttle_concurrency"}),
    },
}


def payload(w: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    target = "http://127.0.0.1:8000/metrics"
    return {"schema_version": "1.0", "kind": "incident", "target": target, "engine": "vllm-v1", "model": "tiny",
            "synthetic": False, "window": w, "similar": [],
            "incident": {"id": "inc-rec", "fingerprint": "0" * 16, "target": target, "engine": "vllm-v1",
                         "model": "tiny", "severity": "warning", "status": "open", "synthetic": False,
                         "anomalies": [], "opened_at": start, "updated_at": end, "resolved_at": None}}


@pytest.mark.parametrize("scenario, phase_name", [(s, p) for s, ps in EXPECT.items() for p in ps])
def test_recorded_phase(scenario: str, phase_name: str) -> None:
    loaded = load(scenario)
    if loaded is None:
        pytest.skip(f"tests/data/vllm_{scenario}.jsonl.gz (and .phases.json) not recorded yet")
    rows, phases = loaded
    start, end = phase(phases, phase_name)
    w = window(rows, start, end)
    assert len(w) >= 5, "too few successful scrapes in the phase to judge"
    root, required, forbidden = EXPECT[scenario][phase_name]
    answer = advise(payload(w, start, end))
    actions = {a["action"] for a in answer["advisories"]}
    assert answer["diagnosis"]["root_cause"] == root, answer["diagnosis"]
    assert required <= actions and not (forbidden & actions), actions


def test_timeline_reader_rates_and_quantiles() -> None:
    text = ("# TYPE vllm:num_preemptions_total counter\n"
            'vllm:num_preemptions_total{engine="0",model_name="tiny"} 30.0\n'
            'vllm:kv_cache_usage_perc{engine="0",model_name="tiny"} 0.5\n'
            'vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="tiny"} 10.0\n'
            'vllm:time_to_first_token_seconds_bucket{le="1.0",model_name="tiny"} 20.0\n'
            'vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="tiny"} 20.0\n')
    values, hists = parse(text)
    buckets = hists["vllm:time_to_first_token_seconds_bucket"]
    assert values == {"vllm:num_preemptions_total": 30.0, "vllm:kv_cache_usage_perc": 0.5}
    # 20 new observations: 10 under 0.1 s, 10 in (0.1, 1.0]: p95 interpolates inside the second bucket.
    assert quantile(0.95, {}, buckets) == pytest.approx(0.1 + 0.9 * 0.9)
    assert quantile(0.95, buckets, buckets) is None  # no new observations: unknown, not 0
    rows = [{"ts": 0.0, "metrics": text}, {"ts": 3.0, "metrics": text.replace(" 30.0", " 45.0")},
            {"ts": 6.0, "error": "timeout"}, {"ts": 9.0, "metrics": text.replace(" 30.0", " 2.0")}]
    w = window(rows, 0.0, 100.0)
    assert "preemptions_per_s" not in w[0]["values"]  # no previous scrape: no rate
    assert w[1]["values"]["preemptions_per_s"] == pytest.approx(5.0)
    assert "preemptions_per_s" not in w[2]["values"]  # the counter went backwards: a restart
    assert len(w) == 3


@pytest.mark.parametrize("scenario", ["kv_overload", "admission_overload", "prefix_churn"])
def test_proactive_raises_no_alarm_on_quiet_real_phases(scenario: str) -> None:
    from rlm_agent import investigate

    loaded = load(scenario)
    if loaded is None:
        pytest.skip(f"tests/data/vllm_{scenario}.jsonl.gz not recorded yet")
    rows, phases = loaded
    quiet = [p["name"] for p in phases["phases"] if p["name"] in ("idle", "healthy", "shared_prefix", "quiet")]
    assert quiet
    for name in quiet:
        start, end = phase(phases, name)
        answer = investigate({"schema_version": "1.0", "kind": "proactive", "target": "http://127.0.0.1:8000",
                              "engine": "vllm-v1", "model": "tiny", "synthetic": False,
                              "window": window(rows, start, end), "similar": []})
        assert answer["advisories"] == [], (name, answer["advisories"])
