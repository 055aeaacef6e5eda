"""The deterministic path: root causes, claim status, unknown-vs-zero, advisory parameters and steps."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rlm_agent import PayloadInvalid, advise, validate_answer
from rlm_agent.diagnose import KV_HIGH

from .conftest import CASES, case_payload


def actions(answer: dict[str, Any]) -> list[str]:
    return [a["action"] for a in answer["advisories"]]


def test_real_vllm_kv_exhaustion_is_told_from_admission_overload() -> None:
    kv = advise(case_payload("real_vllm_kv_overload"))
    adm = advise(case_payload("real_vllm_admission_overload"))
    assert kv["diagnosis"]["root_cause"] == "kv_cache_exhaustion"
    assert "throttle_concurrency" in actions(kv)
    assert adm["diagnosis"]["root_cause"] == "admission_overload"
    assert "raise_batch_capacity" in actions(adm)
    assert "throttle_concurrency" not in actions(adm)
    for answer in (kv, adm):
        assert answer["diagnosis"]["source"] == "rules" and answer["diagnosis"]["fallback_reason"] is None
        assert answer["diagnosis"]["claim_status"] == "measured"
        assert {e["signal"] for e in answer["diagnosis"]["evidence"]} >= {"kv_usage", "requests_waiting"}


def test_throttle_limit_is_the_running_count_when_kv_crossed_the_threshold() -> None:
    payload = case_payload("real_vllm_kv_overload")
    for sample in payload["window"]:
        sample["values"]["requests_running"] = 5.0
    crossing = next(s for s in payload["window"] if s["values"]["kv_usage"] >= KV_HIGH)
    crossing["values"]["requests_running"] = 7.0
    throttle = next(a for a in advise(payload)["advisories"] if a["action"] == "throttle_concurrency")
    assert throttle["parameters"]["max_concurrency"] == 7
    assert "restart with --max-num-seqs 7" in throttle["engine_steps"]
    assert throttle["advisory_only"] is True and throttle["horizon"] == "now"


def test_engine_specific_steps_for_sglang() -> None:
    payload = case_payload("real_vllm_kv_overload")
    payload["engine"] = payload["incident"]["engine"] = "sglang"
    throttle = next(a for a in advise(payload)["advisories"] if a["action"] == "throttle_concurrency")
    steps = " ".join(throttle["engine_steps"])
    assert "--max-running-requests" in steps and "--schedule-conservativeness" in steps
    assert "--max-num-seqs" not in steps


def test_missing_preemptions_are_unknown_not_zero() -> None:
    # Without the preemption signal the KV claim is partial: inferred, capped confidence, no throttle
    # advice (it would need preemptions as evidence).
    payload = case_payload("real_vllm_kv_overload")
    for sample in payload["window"]:
        sample["values"].pop("preemptions_per_s")
    payload["incident"]["anomalies"] = [a for a in payload["incident"]["anomalies"]
                                        if a["code"] != "preemption_storm"]
    answer = advise(payload)
    assert answer["diagnosis"]["root_cause"] == "kv_cache_exhaustion"
    assert answer["diagnosis"]["claim_status"] == "inferred"
    assert answer["diagnosis"]["confidence"] <= 0.6
    assert "throttle_concurrency" not in actions(answer)
    # And with preemptions explicitly 0, the same window is no KV exhaustion claim backed by preemptions.
    zero = case_payload("real_vllm_kv_overload")
    zero["incident"]["anomalies"] = payload["incident"]["anomalies"]
    for sample in zero["window"]:
        sample["values"]["preemptions_per_s"] = 0.0
    assert "throttle_concurrency" not in actions(advise(zero))


def test_empty_window_says_insufficient_evidence() -> None:
    answer = advise(case_payload("metrics_missing"))
    assert answer["diagnosis"]["root_cause"] == "insufficient_evidence"
    assert answer["diagnosis"]["claim_status"] == "not_proven"
    assert answer["advisories"] == []
    assert "no signals" in answer["diagnosis"]["summary"]


def test_synthetic_payload_claims_synthetic() -> None:
    answer = advise(case_payload("simulated_kv_overload"))
    assert answer["diagnosis"]["claim_status"] == "synthetic"


def test_resolved_incident_is_not_measured_live() -> None:
    payload = case_payload("real_vllm_admission_overload")
    for a in payload["incident"]["anomalies"]:
        a["active"] = False
    assert advise(payload)["diagnosis"]["claim_status"] == "inferred"


def test_every_advisory_carries_its_evidence() -> None:
    for name in CASES:
        for a in advise(case_payload(name))["advisories"]:
            assert a["advisory_only"] is True
            assert a["evidence"], (name, a["action"])
            assert a["horizon"] in ("now", "minutes", "hours")


@pytest.mark.parametrize("mutate, path", [
    (lambda p: p.pop("schema_version"), ""),
    (lambda p: p.update(schema_version="2.0"), "/schema_version"),
    (lambda p: p.update(engine="tgi"), "/engine"),
    (lambda p: p["window"][0]["values"].update(kv_usage="high"), "/window/0/values/kv_usage"),
    (lambda p: p["window"][0]["values"].update(kv_usage=float("nan")), "/window/0/values/kv_usage"),
    (lambda p: p["incident"]["anomalies"][0].update(code="bogus"), "/incident/anomalies/0/code"),
    (lambda p: p.pop("incident"), ""),
    (lambda p: p.update(kind="proactive"), "/kind"),
])
def test_malformed_payload_is_a_typed_error_naming_the_field(mutate: Any, path: str) -> None:
    payload = case_payload("real_vllm_kv_overload")
    mutate(payload)
    with pytest.raises(PayloadInvalid) as info:
        advise(payload)
    assert info.value.path == path


@pytest.mark.parametrize("junk", [None, [], "payload", 3, {"schema_version": "1.0"}])
def test_junk_is_a_typed_error(junk: Any) -> None:
    with pytest.raises(PayloadInvalid):
        advise(junk)


def test_answers_validate_and_bad_answers_do_not() -> None:
    answer = advise(case_payload("real_vllm_kv_overload"))
    validate_answer(answer)
    bad = copy.deepcopy(answer)
    bad["advisories"][0]["advisory_only"] = False
    from rlm_agent import AnswerInvalid

    with pytest.raises(AnswerInvalid) as info:
        validate_answer(bad)
    assert info.value.path == "/advisories/0/advisory_only"


def test_a_preemption_storm_vetoes_admission_overload_and_prefill() -> None:
    # Queue with a low KV gauge looks like admission overload, unless the scheduler is preempting.
    payload = case_payload("real_vllm_admission_overload")
    payload["incident"]["anomalies"].append(
        {"code": "preemption_storm", "severity": "critical", "active": True, "summary": "", "since": 1.0,
         "cleared_at": None, "evidence": [{"signal": "preemptions_per_s", "value": 12.0, "threshold": 0.5,
                                           "op": ">=", "note": ""}]})
    answer = advise(payload)
    assert answer["diagnosis"]["root_cause"] == "kv_cache_exhaustion"
    assert answer["diagnosis"]["claim_status"] == "inferred"  # the window never showed the cache full
    assert "raise_batch_capacity" not in actions(answer)


def test_scale_out_reports_demand_from_the_same_scrapes() -> None:
    payload = case_payload("real_vllm_kv_overload")
    scale = next(a for a in advise(payload)["advisories"] if a["action"] == "scale_out")
    pairs = [(s["values"]["requests_running"], s["values"]["requests_waiting"]) for s in payload["window"]]
    assert scale["parameters"] == {"demand_peak": int(max(r + w for r, w in pairs)),
                                   "running_peak": int(max(r for r, _ in pairs))}


def test_near_full_and_climbing_is_imminent_kv_exhaustion_not_decode() -> None:
    # The same payload as "full but no pressure" (insufficient_evidence), except the cache is still
    # climbing toward full and decode slows: the cause the kv_pressure anomaly implies, named at once.
    payload = case_payload("kv_full_no_pressure")
    n = len(payload["window"])
    for i, sample in enumerate(payload["window"]):
        sample["values"]["kv_usage"] = round(0.6 + 0.3 * i / (n - 1), 4)
        sample["values"]["itl_p95_s"] = 0.02 if i < n // 2 else 0.08
    d = advise(payload)["diagnosis"]
    assert d["root_cause"] == "kv_cache_exhaustion" and d["confidence"] <= 0.6
    assert "kv_time_to_full_s" in {e["signal"] for e in d["evidence"]}
    flat = advise(case_payload("kv_full_no_pressure"))["diagnosis"]
    assert flat["root_cause"] == "insufficient_evidence"  # a full cache alone is a busy engine
