"""Incidents come first: proactive W1–W4 calls may not spend the LLM budget an incident needs.

An injected clock stands in for the hour (no sleeping); the LLM is the loopback recorded-answer double
(a test double speaking the real chat-completions protocol to the real openai SDK).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rlm_agent import LLMClient, LLMSettings, aadvise, ainvestigate
from rlm_agent.errors import LLMError, SettingsInvalid
from rlm_agent.testing import RecordedLLMServer, Reply

from .conftest import CASES, case_payload

KEY = "sk-test-budget"
T0 = 1_790_000_000.0
EVERY_S = 150.0  # the daemon's defaults: a proactive investigation every 5 cycles of 30 s
GOOD = CASES["real_vllm_kv_overload"]["llm_recorded"]["good"]
SUB = Reply.answer({"explanation": "KV usage rises 0.01 per sample.", "concern": "medium"})


def proactive(start: float, values: Any, n: int = 20) -> dict[str, Any]:
    return {"schema_version": "1.0", "kind": "proactive", "target": "http://10.1.2.3:8000/metrics",
            "engine": "vllm-v1", "model": "tiny", "synthetic": False,
            "window": [{"ts": start + i * 3.0, "values": values(i)} for i in range(n)], "similar": []}


def healthy(k: int) -> Any:
    # A real healthy vLLM wanders (KV 0 to 0.2 from scrape to scrape): no trend, no advisory.
    return lambda i: {"kv_usage": 0.1 + 0.05 * ((i * 7 + k) % 3), "requests_running": 3 + (i + k) % 2,
                      "requests_waiting": 0, "ttft_p95_s": 0.2}


def climbing(k: int) -> Any:
    # KV climbing steadily toward the wall: a leading indicator, a throttle_concurrency advisory.
    return lambda i: {"kv_usage": 0.3 + 0.01 * i + 0.005 * k, "requests_running": 10 + k, "requests_waiting": 0}


def serve(server: RecordedLLMServer) -> None:
    server.by_schema = {name: SUB for name in ("w1_trend", "w2_pattern", "w3_leading", "w4_compaction")}
    server.by_schema["combine"] = Reply.answer({"summary": "KV fills within minutes at this slope."})
    server.by_schema["diagnosis"] = Reply.answer(GOOD)


def incident(k: int) -> dict[str, Any]:
    payload = case_payload("real_vllm_kv_overload")
    payload["window"][-1]["values"]["requests_running"] = 100.0 + k  # new evidence: no cache hit
    return payload


async def test_an_incident_gets_the_llm_after_an_hour_of_healthy_proactive_traffic(
        llm_server: RecordedLLMServer) -> None:
    now = [T0]
    llm = LLMClient(LLMSettings(api_key=KEY, base_url=llm_server.base_url, timeout_s=10.0),
                    clock=lambda: now[0])
    serve(llm_server)
    answers = []
    for k in range(24):  # one hour of a healthy target at the default cadence
        answers.append(await ainvestigate(proactive(now[0], healthy(k)), llm=llm))
        now[0] += EVERY_S
    assert llm_server.requests == []  # nothing to explain: no call spent
    assert {a["diagnosis"]["fallback_reason"] for a in answers} == {"llm_no_leading_indicator"}
    answer = await aadvise(incident(0), llm=llm)
    await llm.aclose()
    assert (answer["diagnosis"]["source"], answer["diagnosis"]["fallback_reason"]) == ("llm", None)
    assert [r["body"]["response_format"]["json_schema"]["name"] for r in llm_server.requests] == ["diagnosis"]


async def test_proactive_calls_with_a_leading_indicator_spend_only_their_share(
        llm_server: RecordedLLMServer) -> None:
    # Worst case: a leading indicator at every investigation for an hour. Proactive calls stop at their
    # share (60 x 0.25 = 15 calls); an investigation starts only when all five of its calls fit, so
    # none is half-explained. At least the other 45 calls of the hour stay for incidents.
    now = [T0]
    llm = LLMClient(LLMSettings(api_key=KEY, base_url=llm_server.base_url, timeout_s=10.0,
                                max_calls_per_hour=60, proactive_share=0.25), clock=lambda: now[0])
    serve(llm_server)
    sources = []
    for k in range(24):
        answer = await ainvestigate(proactive(now[0], climbing(k)), llm=llm)
        assert answer["advisories"][0]["action"] == "throttle_concurrency"
        sources.append((answer["diagnosis"]["source"], answer["diagnosis"]["fallback_reason"] or ""))
        now[0] += EVERY_S / 10  # an investigation every 15 s: all 24 inside one hour
    proactive_calls = llm.usage()["proactive"]["calls"]
    assert len(llm_server.requests) == proactive_calls
    assert 10 < proactive_calls <= 15  # spent up to its share (cache hits make some investigations cheaper)
    explained = [s for s, _ in sources].count("llm")
    assert sources[:explained] == [("llm", "")] * explained  # then refused, every time, until the hour slides
    assert all(r.startswith("llm_budget_exhausted: proactive share: ") for _, r in sources[explained:])
    assert len(sources) - explained >= 10
    incidents = [await aadvise(incident(k), llm=llm) for k in range(61)]
    await llm.aclose()
    served = [a["diagnosis"]["source"] for a in incidents].count("llm")
    assert served == 60 - proactive_calls >= 45
    assert incidents[-1]["diagnosis"]["fallback_reason"] == "llm_budget_exhausted: 60 calls in the last hour"
    usage = llm.usage()
    assert (usage["incident"]["calls"], usage["total"]["calls"]) == (served, 60)
    assert usage["incident"]["budget_refusals"] == 61 - served
    assert usage["budget"] == {"max_calls_per_hour": 60, "proactive_max_calls_per_hour": 15,
                               "calls_last_hour": {"incident": served, "proactive": proactive_calls}}
    now[0] += 3600.0  # the hour slides: the whole budget comes back
    assert llm.budget_left("proactive") == 15 and llm.budget_left("incident") == 60


@pytest.mark.parametrize("limit", [60, None], ids=["budget-60", "no-budget"])
async def test_a_share_of_zero_turns_proactive_llm_calls_off(llm_server: RecordedLLMServer,
                                                             limit: int | None) -> None:
    llm = LLMClient(LLMSettings(api_key=KEY, base_url=llm_server.base_url, proactive_share=0.0,
                                max_calls_per_hour=limit))
    serve(llm_server)
    answer = await ainvestigate(proactive(T0, climbing(0)), llm=llm)
    assert answer["advisories"] and answer["diagnosis"]["source"] == "rules"  # the rules still run
    assert answer["diagnosis"]["fallback_reason"] == (
        "llm_budget_exhausted: proactive share: 0 of the 5 calls an investigation needs")
    with pytest.raises(LLMError, match="proactive LLM calls are off"):
        await llm.complete_json(system="s", user="u", schema={"type": "object"}, schema_name="x",
                                purpose="proactive")
    assert (await aadvise(incident(0), llm=llm))["diagnosis"]["source"] == "llm"
    await llm.aclose()
    assert len(llm_server.requests) == 1


async def test_usage_counts_tokens_and_cost_per_purpose(llm_server: RecordedLLMServer) -> None:
    llm = LLMClient(LLMSettings(api_key=KEY, base_url=llm_server.base_url, price_input_per_mtok=0.5,
                                price_output_per_mtok=2.0))
    serve(llm_server)
    assert llm.usage()["incident"]["cost_usd"] is None  # no call yet
    await aadvise(incident(0), llm=llm)
    await ainvestigate(proactive(T0, climbing(0)), llm=llm)
    await aadvise(incident(0), llm=llm)  # the same evidence: a cache hit, no call
    await llm.aclose()
    usage = llm.usage()
    json.dumps(usage)  # plain data, ready for a metrics endpoint or a JSON API
    for purpose, calls in (("incident", 1), ("proactive", 5)):
        u = usage[purpose]
        assert u["calls"] == calls and u["prompt_tokens"] > 0 and u["completion_tokens"] > 0
        assert u["cost_usd"] == pytest.approx((u["prompt_tokens"] * 0.5 + u["completion_tokens"] * 2.0) / 1e6)
    assert usage["incident"]["cache_hits"] == 1
    assert usage["total"]["prompt_tokens"] == usage["incident"]["prompt_tokens"] + usage["proactive"]["prompt_tokens"]
    assert KEY not in json.dumps(usage)


async def test_without_prices_cost_stays_unknown(llm_server: RecordedLLMServer) -> None:
    llm = LLMClient(LLMSettings(api_key=KEY, base_url=llm_server.base_url))
    serve(llm_server)
    await aadvise(incident(0), llm=llm)
    await llm.aclose()
    assert llm.usage()["total"]["cost_usd"] is None and llm.usage()["total"]["calls"] == 1


@pytest.mark.parametrize("env, setting", [
    ({"INFERGUARD_LLM_PROACTIVE_SHARE": "1.5"}, "INFERGUARD_LLM_PROACTIVE_SHARE"),
    ({"INFERGUARD_LLM_PROACTIVE_SHARE": "nan"}, "INFERGUARD_LLM_PROACTIVE_SHARE"),
    ({"INFERGUARD_LLM_MAX_CALLS_PER_HOUR": "inf"}, "INFERGUARD_LLM_MAX_CALLS_PER_HOUR"),
    ({"INFERGUARD_LLM_PRICE_INPUT_PER_MTOK": "-1"}, "INFERGUARD_LLM_PRICE_INPUT_PER_MTOK"),
    ({"INFERGUARD_LLM_TIMEOUT_SECONDS": "inf"}, "INFERGUARD_LLM_TIMEOUT_SECONDS"),
])
def test_budget_and_price_settings_are_validated(env: dict[str, str], setting: str) -> None:
    with pytest.raises(SettingsInvalid) as info:
        LLMSettings.from_env(env)
    assert info.value.setting == setting


def test_budget_defaults_and_env() -> None:
    s = LLMSettings.from_env({})
    assert (s.max_calls_per_hour, s.proactive_share) == (60, 0.25)
    s = LLMSettings.from_env({"INFERGUARD_LLM_PROACTIVE_SHARE": "0", "INFERGUARD_LLM_PRICE_INPUT_PER_MTOK": "0.6",
                              "INFERGUARD_LLM_PRICE_OUTPUT_PER_MTOK": "2.4"})
    assert (s.proactive_share, s.price_input_per_mtok, s.price_output_per_mtok) == (0.0, 0.6, 2.4)
