"""Proactive W1–W4: deterministic numbers, proactive advisories, and LLM sub-calls combined."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rlm_agent import LLMClient, LLMSettings, PayloadInvalid, ainvestigate, investigate
from rlm_agent.testing import RecordedLLMServer, Reply

T0 = 1_790_000_000.0


def proactive(values: Any, n: int = 20, engine: str = "vllm-v1", similar: list[dict[str, Any]] | None = None,
              step: float = 3.0) -> dict[str, Any]:
    return {"schema_version": "1.0", "kind": "proactive", "target": "http://10.1.2.3:8000/metrics",
            "engine": engine, "model": "tiny", "synthetic": False,
            "window": [{"ts": T0 + i * step, "values": values(i)} for i in range(n)],
            "similar": similar or []}


def test_rising_kv_gives_time_to_exhaustion_and_a_throttle_advisory() -> None:
    # KV climbs 0.01 per 3 s sample: slope 1/300 per second; at the last sample (0.59) full in 123 s.
    answer = investigate(proactive(lambda i: {"kv_usage": 0.4 + 0.01 * i, "requests_running": 10,
                                              "requests_waiting": 0}))
    inv = answer["investigation"]
    assert inv["w1_trend"]["kv_usage"]["direction"] == "rising"
    assert inv["w1_trend"]["kv_usage"]["slope_per_s"] == pytest.approx(1 / 300, rel=1e-5)
    assert inv["w3_leading"]["time_to_kv_exhaustion_s"] == pytest.approx(123.0, abs=0.2)
    [adv] = answer["advisories"]
    assert adv["action"] == "throttle_concurrency" and adv["proactive"] is True and adv["horizon"] == "minutes"
    assert adv["parameters"]["max_concurrency"] == 10  # 10 running x min(1, 0.85 / 0.59)
    assert answer["diagnosis"]["root_cause"] == "kv_cache_exhaustion"
    assert answer["diagnosis"]["claim_status"] == "inferred"


def test_flat_healthy_target_gives_nothing() -> None:
    answer = investigate(proactive(lambda i: {"kv_usage": 0.3, "requests_running": 4, "requests_waiting": 0,
                                              "ttft_p95_s": 0.2}))
    assert answer["advisories"] == []
    assert answer["diagnosis"]["root_cause"] == "insufficient_evidence"
    assert {v["direction"] for v in answer["investigation"]["w1_trend"].values()} == {"flat"}


def test_queue_growth_with_headroom_suggests_batch_capacity() -> None:
    answer = investigate(proactive(lambda i: {"kv_usage": 0.01, "requests_running": 2,
                                              "requests_waiting": 0.5 * i}))
    assert [a["action"] for a in answer["advisories"]] == ["raise_batch_capacity"]
    assert answer["investigation"]["w3_leading"]["queue_growth_per_s"] == pytest.approx(0.5 / 3, rel=1e-5)
    assert answer["diagnosis"]["root_cause"] == "admission_overload"


def test_w2_recurrence_and_w4_compaction() -> None:
    similar = [{"id": f"inc-{k}", "codes": ["kv_pressure", "preemption_storm"], "root_cause": "kv_cache_exhaustion",
                "target": "http://10.1.2.3:8000/metrics", "opened_at": T0 - 3600 * (3 - k)} for k in range(3)]
    answer = investigate(proactive(lambda i: {"kv_usage": 0.8, "prefix_cache_hit_ratio": 0.6,
                                              "requests_waiting": 0}, similar=similar))
    inv = answer["investigation"]
    assert inv["w2_pattern"]["recurrences"] == 3 and inv["w2_pattern"]["mean_interval_s"] == 3600.0
    assert inv["w2_pattern"]["dominant_root_cause"] == "kv_cache_exhaustion"
    assert inv["w4_compaction"]["opportunity"] is True and inv["w4_compaction"]["score"] == pytest.approx(0.48)
    assert {a["action"] for a in answer["advisories"]} == {"recommend_compaction", "scale_out"}
    assert all(a["horizon"] == "hours" for a in answer["advisories"])


def test_unknown_signals_stay_unknown() -> None:
    inv = investigate(proactive(lambda i: {"requests_running": 3}))["investigation"]
    assert inv["w1_trend"]["kv_usage"] == {"direction": "unknown"}
    assert inv["w3_leading"]["time_to_kv_exhaustion_s"] is None
    assert inv["w4_compaction"]["opportunity"] is False and inv["w4_compaction"]["score"] is None


def test_investigate_rejects_a_bad_payload() -> None:
    bad = proactive(lambda i: {"kv_usage": 0.1})
    bad["window"][2]["ts"] = "yesterday"
    with pytest.raises(PayloadInvalid) as info:
        investigate(bad)
    assert info.value.path == "/window/2/ts"


async def test_each_w_gets_its_own_llm_sub_call_then_a_combine(llm_server: RecordedLLMServer) -> None:
    llm_server.default = Reply.answer({"explanation": "KV rises 0.0033/s.", "concern": "high"})
    combine = {"summary": "KV fills in about two minutes; throttle now."}
    llm = LLMClient(LLMSettings(api_key="k", base_url=llm_server.base_url, timeout_s=10.0))
    payload = proactive(lambda i: {"kv_usage": 0.4 + 0.01 * i, "requests_running": 10, "requests_waiting": 0})

    # The four sub-calls run concurrently; the combine call comes last and is told apart by its schema.
    original = llm_server._next

    def route(body: dict[str, Any]) -> Reply:
        if body["response_format"]["json_schema"]["name"] == "combine":
            return Reply.answer(combine)
        return original(body)

    llm_server._next = route  # type: ignore[method-assign]
    answer = await ainvestigate(payload, llm=llm)
    await llm.aclose()
    names = [r["body"]["response_format"]["json_schema"]["name"] for r in llm_server.requests]
    assert sorted(names[:4]) == ["w1_trend", "w2_pattern", "w3_leading", "w4_compaction"]
    assert names[4] == "combine"
    inv = answer["investigation"]
    assert inv["source"] == "llm" and set(inv["explanations"]) == {"w1_trend", "w2_pattern", "w3_leading",
                                                                  "w4_compaction"}
    assert answer["diagnosis"]["summary"] == combine["summary"]
    # The numbers and advisories are the rules' own.
    assert answer["advisories"] == investigate(payload)["advisories"]
    w3 = json.loads(json.dumps(inv["w3_leading"]))
    assert w3 == investigate(payload)["investigation"]["w3_leading"]


async def test_sub_call_failure_falls_back_with_reason(llm_server: RecordedLLMServer) -> None:
    llm_server.default = Reply.malformed()
    llm = LLMClient(LLMSettings(api_key="k", base_url=llm_server.base_url, timeout_s=10.0))
    payload = proactive(lambda i: {"kv_usage": 0.4 + 0.01 * i, "requests_running": 10})
    answer = await ainvestigate(payload, llm=llm)
    await llm.aclose()
    assert answer["investigation"]["source"] == "rules"
    assert answer["diagnosis"]["fallback_reason"] == "llm_invalid_json"
    assert answer["diagnosis"]["source"] == "rules"
