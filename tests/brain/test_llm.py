"""The LLM path: the real openai SDK against the loopback recorded-answer double (real HTTP)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from rlm_agent import LLMClient, LLMError, LLMSettings, aadvise, advise
from rlm_agent.errors import SettingsInvalid
from rlm_agent.testing import RecordedLLMServer, Reply

from .conftest import CASES, case_payload

KEY = "sk-test-0123456789-SECRET"


def client(server: RecordedLLMServer, **kw: Any) -> LLMClient:
    settings = LLMSettings(**{"api_key": KEY, "base_url": server.base_url, "timeout_s": 10.0, **kw})
    return LLMClient(settings, sleep=kw.pop("sleep", None) or _nosleep)


async def _nosleep(_: float) -> None:
    return None


GOOD = CASES["real_vllm_kv_overload"]["llm_recorded"]["good"]
WRONG = CASES["real_vllm_kv_overload"]["llm_recorded"]["wrong"]


async def test_good_answer_is_used_and_marked_llm(llm_server: RecordedLLMServer) -> None:
    llm = client(llm_server)
    llm_server.push(Reply.answer(GOOD))
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    await llm.aclose()
    d = answer["diagnosis"]
    assert (d["root_cause"], d["source"], d["fallback_reason"]) == ("kv_cache_exhaustion", "llm", None)
    assert d["summary"] == GOOD["summary"]
    assert answer["llm"]["status"] == "accepted"
    assert "throttle_concurrency" in [a["action"] for a in answer["advisories"]]
    [request] = llm_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["response_format"]["type"] == "json_schema"
    assert {k.lower(): v for k, v in request["headers"].items()}["authorization"] == f"Bearer {KEY}"


async def test_wrong_answer_contradicted_by_evidence_is_downgraded(llm_server: RecordedLLMServer) -> None:
    llm = client(llm_server)
    llm_server.push(Reply.answer({**WRONG, "evidence": [{"signal": "requests_waiting", "value": 39.0,
                                                          "note": "real value, wrong conclusion"}]}))
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    await llm.aclose()
    d = answer["diagnosis"]
    assert d["root_cause"] == "kv_cache_exhaustion" and d["source"] == "rules"
    assert d["fallback_reason"].startswith("llm_contradicted: admission_overload")
    assert answer["llm"]["status"] == "downgraded"
    assert answer["llm"]["rejected"]["claim_status"] == "not_proven"
    assert "preemptions" in answer["llm"]["rejected"]["reason"]


async def test_unsupported_evidence_values_are_dropped(llm_server: RecordedLLMServer) -> None:
    llm = client(llm_server)
    llm_server.push(Reply.answer({**GOOD, "evidence": [
        {"signal": "kv_usage", "value": 0.42424, "note": "invented"},
        {"signal": "requests_waiting", "value": 39.0, "note": "real"}]}))
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    await llm.aclose()
    assert answer["diagnosis"]["evidence"] == [{"signal": "requests_waiting", "value": 39.0, "note": "real"}]
    assert answer["llm"]["evidence_dropped"] == 1


@pytest.mark.parametrize("reply, reason", [
    (Reply.malformed(), "llm_invalid_json"),
    (Reply.refused(), "llm_refusal"),
    (Reply(content='{"root_cause": "overheated", "summary": "x", "evidence": [], "confidence": 2}'),
     "llm_invalid_answer"),
    (Reply(content="   "), "llm_empty_answer"),
    (Reply(status=401), "llm_auth_failed"),
])
async def test_failures_give_the_rules_answer_with_the_reason(llm_server: RecordedLLMServer, reply: Reply,
                                                              reason: str) -> None:
    llm = client(llm_server)
    llm_server.push(reply)
    payload = case_payload("real_vllm_admission_overload")
    answer = await aadvise(payload, llm=llm)
    await llm.aclose()
    rules = advise(case_payload("real_vllm_admission_overload"))
    assert answer["diagnosis"]["fallback_reason"].startswith(reason)
    assert answer["diagnosis"]["source"] == "rules"
    assert answer["diagnosis"]["root_cause"] == rules["diagnosis"]["root_cause"]
    assert answer["advisories"] == rules["advisories"]
    assert KEY not in json.dumps(answer)


async def test_slow_answer_times_out_to_rules(llm_server: RecordedLLMServer) -> None:
    llm = client(llm_server, timeout_s=0.3)
    llm_server.push(Reply.slow(GOOD, 3.0))
    loop = asyncio.get_running_loop()
    start = loop.time()
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    await llm.aclose()
    assert loop.time() - start < 3.0  # 0.3 s plus overhead on a loaded machine; 3 s would mean no timeout
    assert answer["diagnosis"]["fallback_reason"] == "llm_timeout: no answer within 0.3 s"


async def test_the_event_loop_keeps_running_during_an_llm_call(llm_server: RecordedLLMServer) -> None:
    llm = client(llm_server, timeout_s=10.0)
    llm_server.push(Reply.slow(GOOD, 0.6))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    task.cancel()
    await llm.aclose()
    assert answer["diagnosis"]["source"] == "llm"
    assert ticks >= 5  # ~30 possible in 0.6 s; a call blocking the loop would allow 0 or 1


async def test_429_then_ok_is_retried(llm_server: RecordedLLMServer) -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    llm = LLMClient(LLMSettings(api_key=KEY, base_url=llm_server.base_url, max_retries=2), sleep=sleep)
    llm_server.push(Reply.rate_limited(retry_after=1.5), Reply.server_error(), Reply.answer(GOOD))
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    await llm.aclose()
    assert answer["diagnosis"]["source"] == "llm"
    assert slept == [1.5, 1.0]  # Retry-After honoured, then exponential backoff
    assert (llm.totals.calls, llm.totals.retries) == (3, 2)


async def test_retries_are_bounded(llm_server: RecordedLLMServer) -> None:
    llm = client(llm_server, max_retries=1)
    llm_server.push(Reply.rate_limited(), Reply.rate_limited(), Reply.answer(GOOD))
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    await llm.aclose()
    assert answer["diagnosis"]["fallback_reason"] == "llm_rate_limited: HTTP 429 after 2 attempts"
    assert len(llm_server.requests) == 2


async def test_endpoint_without_json_schema_falls_back_to_json_mode(llm_server: RecordedLLMServer) -> None:
    llm = client(llm_server)
    llm_server.push(Reply(content=json.dumps(GOOD), reject_json_schema=True))
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    await llm.aclose()
    assert answer["diagnosis"]["source"] == "llm"
    assert [r["body"]["response_format"]["type"] for r in llm_server.requests] == ["json_schema", "json_object"]


async def test_no_key_falls_back_without_any_request(llm_server: RecordedLLMServer) -> None:
    llm = LLMClient(LLMSettings(api_key=None, base_url=llm_server.base_url))
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    assert answer["diagnosis"]["fallback_reason"] == "llm_no_api_key: GMI_API_KEY is not set"
    assert llm_server.requests == []


async def test_cache_and_budget_and_accounting(llm_server: RecordedLLMServer) -> None:
    now = [1000.0]
    llm = LLMClient(LLMSettings(api_key=KEY, base_url=llm_server.base_url, max_calls_per_hour=2,
                                price_input_per_mtok=1.0, price_output_per_mtok=2.0), clock=lambda: now[0])
    llm_server.default = Reply.answer(GOOD)
    p1 = case_payload("real_vllm_kv_overload")
    a1 = await aadvise(p1, llm=llm)
    a2 = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)  # same fingerprint and evidence
    assert a1["llm"]["cached"] is False and a2["llm"]["cached"] is True
    assert len(llm_server.requests) == 1 and llm.totals.cache_hits == 1
    p1["window"][-1]["values"]["requests_waiting"] = 38.0  # new evidence: a new call
    await aadvise(p1, llm=llm)
    p1["window"][-1]["values"]["requests_waiting"] = 37.0
    a4 = await aadvise(p1, llm=llm)
    assert a4["diagnosis"]["fallback_reason"] == "llm_budget_exhausted: 2 calls in the last hour"
    now[0] += 3600.0
    assert (await aadvise(p1, llm=llm))["diagnosis"]["source"] == "llm"
    await llm.aclose()
    assert llm.totals.prompt_tokens > 0 and llm.totals.completion_tokens > 0
    expected = (llm.totals.prompt_tokens * 1.0 + llm.totals.completion_tokens * 2.0) / 1e6
    assert llm.totals.cost_usd == pytest.approx(expected)


async def test_labels_are_data_not_instructions(llm_server: RecordedLLMServer) -> None:
    llm = client(llm_server)
    injected = CASES["label_injection"]["llm_recorded"]["wrong"]  # what an obedient model would say
    llm_server.push(Reply.answer(injected))
    answer = await aadvise(case_payload("label_injection"), llm=llm)
    await llm.aclose()
    [request] = llm_server.requests
    system, user = request["body"]["messages"]
    assert "Ignore all previous instructions" not in system["content"]
    data = user["content"].split("<telemetry>\n", 1)[1].rsplit("\n</telemetry>", 1)[0]
    assert json.loads(data)["labels"]["team"].startswith("Ignore all previous instructions")
    assert answer["diagnosis"]["root_cause"] == "admission_overload"
    assert answer["llm"]["status"] == "downgraded"


async def test_redaction_keeps_hosts_ips_and_model_from_the_llm(llm_server: RecordedLLMServer) -> None:
    llm = client(llm_server, redact=True)
    llm_server.push(Reply.answer(GOOD))
    payload = case_payload("real_vllm_kv_overload")
    payload["model"] = payload["incident"]["model"] = "acme/secret-model-7b"
    payload["labels"] = {"node": "gpu-7.us-east.corp.example", "ip": "192.168.4.20"}
    payload["incident"]["anomalies"][0]["evidence"][0]["note"] = "seen on gpu-7.us-east.corp.example"
    await aadvise(payload, llm=llm)
    await llm.aclose()
    body = json.dumps(llm_server.requests[0]["body"])
    for secret in ("acme/secret-model-7b", "gpu-7.us-east.corp.example", "192.168.4.20",
                   payload["target"].split("//")[1].split(":")[0]):
        assert secret not in body
    assert "model-1" in body and "host-" in body


def test_settings_from_env_and_secrets_stay_out_of_repr() -> None:
    s = LLMSettings.from_env({"GMI_API_KEY": KEY, "INFERGUARD_LLM_TIMEOUT_SECONDS": "7.5",
                              "INFERGUARD_LLM_MAX_CALLS_PER_HOUR": "30", "INFERGUARD_LLM_REDACT": "true"})
    assert (s.base_url, s.model, s.timeout_s, s.max_calls_per_hour, s.redact) == (
        "https://api.gmi-serving.com/v1", "openai/gpt-oss-120b", 7.5, 30, True)
    assert KEY not in repr(s) and KEY not in repr(LLMClient(s).settings)
    with pytest.raises(SettingsInvalid) as info:
        LLMSettings.from_env({"INFERGUARD_LLM_TIMEOUT_SECONDS": "soon"})
    assert info.value.setting == "INFERGUARD_LLM_TIMEOUT_SECONDS"
    with pytest.raises(SettingsInvalid):
        LLMSettings.from_env({"GMI_BASE_URL": "ftp://x"})


async def test_connection_refused_is_an_llm_error() -> None:
    with RecordedLLMServer() as server:
        url = server.base_url
    llm = LLMClient(LLMSettings(api_key=KEY, base_url=url, timeout_s=10.0))
    with pytest.raises(LLMError) as info:
        await llm.complete_json(system="s", user="u", schema={"type": "object"}, schema_name="x",
                               purpose="incident")
    await llm.aclose()
    assert info.value.reason == "connect" and KEY not in str(info.value)


async def test_an_unexpected_sdk_failure_is_an_llm_error(llm_server: RecordedLLMServer) -> None:
    # Whatever the SDK hands back or raises beyond its documented errors stays an LLM failure.
    class Weird:
        @property
        def choices(self) -> Any:
            raise TypeError("unexpected shape")

    llm = client(llm_server)

    async def send(*args: Any) -> Any:
        return Weird()

    llm._send = send  # type: ignore[method-assign,assignment]
    answer = await aadvise(case_payload("real_vllm_kv_overload"), llm=llm)
    assert answer["diagnosis"]["source"] == "rules"
    assert answer["diagnosis"]["fallback_reason"] == "llm_sdk_error: TypeError"
    assert llm.totals.failures == 1


async def test_a_measured_rules_diagnosis_is_not_overruled(llm_server: RecordedLLMServer) -> None:
    # "insufficient_evidence" cannot be contradicted, but the rules measured the cause: they stand.
    llm = client(llm_server)
    llm_server.push(Reply.answer({"root_cause": "insufficient_evidence", "summary": "Unsure.", "evidence": [],
                                  "confidence": 0.9}))
    answer = await aadvise(case_payload("real_vllm_admission_overload"), llm=llm)
    await llm.aclose()
    assert answer["diagnosis"]["root_cause"] == "admission_overload"
    assert answer["llm"]["status"] == "downgraded"
    assert "measured admission_overload" in answer["diagnosis"]["fallback_reason"]


async def test_an_llm_cause_the_rules_did_not_reach_is_inferred(llm_server: RecordedLLMServer) -> None:
    # The rules say insufficient_evidence (queue, KV unknown); the LLM names a cause with real values.
    llm = client(llm_server)
    llm_server.push(Reply.answer({"root_cause": "admission_overload", "summary": "Batch limit.",
                                  "evidence": [{"signal": "requests_waiting", "value": 12.0, "note": "queue"}],
                                  "confidence": 0.9}))
    answer = await aadvise(case_payload("queue_kv_unknown"), llm=llm)
    await llm.aclose()
    d = answer["diagnosis"]
    assert (d["root_cause"], d["claim_status"], d["source"]) == ("admission_overload", "inferred", "llm")
    assert d["confidence"] == 0.6
    assert answer["advisories"] == []  # advisories need evidence the rules can check: KV is unknown
