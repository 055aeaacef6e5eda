"""InferGuard's LocalBrain: rlm_agent in-process, with the daemon's own settings object."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from inferguard.brain import Brain, LocalBrain, build_brain
from inferguard.brain.payloads import build_incident_payload
from inferguard.errors import PayloadError
from rlm_agent.testing import RecordedLLMServer, Reply

from .conftest import CASES, case_payload

KEY = "sk-local-SECRET"


def settings(url: str, key: str | None = KEY) -> SimpleNamespace:
    # The shape of inferguard.config.BrainSettings (the lead's settings group).
    return SimpleNamespace(gmi_api_key=SecretStr(key) if key else None, gmi_base_url=url, gmi_model="m",
                           llm_timeout_seconds=10.0, llm_max_calls_per_hour=10, llm_redact=False)


async def test_local_brain_without_llm_is_the_rules() -> None:
    brain = build_brain("local", url=None, llm=None)
    assert isinstance(brain, Brain)
    case = case_payload("real_vllm_admission_overload")
    answer = await brain.advise(build_incident_payload(case["incident"], case["window"], []))
    await brain.aclose()
    assert answer["diagnosis"]["root_cause"] == "admission_overload"
    assert answer["diagnosis"]["fallback_reason"] is None and "llm" not in answer


async def test_local_brain_with_the_daemon_settings(llm_server: RecordedLLMServer) -> None:
    llm_server.push(Reply.answer(CASES["real_vllm_kv_overload"]["llm_recorded"]["good"]))
    brain = LocalBrain(settings(llm_server.base_url))
    case = case_payload("real_vllm_kv_overload")
    answer = await brain.advise(build_incident_payload(case["incident"], case["window"], []))
    usage = brain.usage
    await brain.aclose()
    assert answer["diagnosis"]["source"] == "llm"
    assert usage is not None and usage["incident"]["calls"] == usage["total"]["calls"] == 1
    assert llm_server.requests[0]["body"]["model"] == "m"


async def test_local_brain_settings_without_key_say_why(llm_server: RecordedLLMServer) -> None:
    brain = LocalBrain(settings(llm_server.base_url, key=None))
    case = case_payload("real_vllm_kv_overload")
    answer = await brain.advise(build_incident_payload(case["incident"], case["window"], []))
    await brain.aclose()
    assert answer["diagnosis"]["fallback_reason"].startswith("llm_no_api_key")
    assert llm_server.requests == []


async def test_local_brain_maps_rlm_errors_to_payload_error() -> None:
    brain = LocalBrain()
    payload = case_payload("real_vllm_kv_overload")
    payload["engine"] = "tgi"
    with pytest.raises(PayloadError, match="/engine"):
        await brain.advise(payload)
    with pytest.raises(PayloadError, match="kind"):
        await brain.advise({**case_payload("engine_down"), "kind": "proactive"})
    await brain.aclose()


def test_brain_stage_takes_the_incident_stage_document() -> None:
    # The Incident (inferguard.incidents.lifecycle) as the runtime hands it over: its IncidentDoc.
    from inferguard.brain import BrainStage
    from inferguard.incidents.lifecycle import Anomaly, Incident
    from rlm_agent import validate_answer, validate_payload

    case = case_payload("real_vllm_admission_overload")
    src = case["incident"]
    inc = Incident(id=src["id"], fingerprint=src["fingerprint"], target=src["target"], engine="vllm-v1",
                   model="tiny", opened_at=src["opened_at"], updated_at=src["updated_at"], severity="critical")
    for a in src["anomalies"]:
        inc.anomalies[(a["code"], "tiny")] = Anomaly(code=a["code"], model="tiny", severity=a["severity"],
                                                     summary=a["summary"], since=a["since"],
                                                     evidence=a["evidence"])
    stage = BrainStage(LocalBrain())
    update = stage.advise(inc.to_dict(), case["window"], [inc.to_dict()])
    assert update is not None and update.incident_id == inc.id and update.source == "rules"
    assert update.diagnosis["root_cause"] == "admission_overload"
    assert "raise_batch_capacity" in [a["action"] for a in update.advisories]
    # What the stage built and got back is valid by the brain's own schemas (checked here, not at run time).
    validate_payload(dict(build_incident_payload(inc.to_dict(), case["window"], [inc.to_dict()])))
    validate_answer({"schema_version": "1.0", "diagnosis": update.diagnosis, "advisories": update.advisories})


def test_sync_advise_with_an_llm_outside_a_loop(llm_server: RecordedLLMServer) -> None:
    from rlm_agent import LLMClient, LLMSettings, advise

    llm = LLMClient(LLMSettings(api_key=KEY, base_url=llm_server.base_url, timeout_s=10.0))
    llm_server.default = Reply.answer(CASES["real_vllm_kv_overload"]["llm_recorded"]["good"])
    first = advise(case_payload("real_vllm_kv_overload"), llm=llm)
    second = advise(case_payload("real_vllm_admission_overload"), llm=llm)  # a new loop, a new pool
    assert first["diagnosis"]["source"] == "llm"
    assert second["llm"]["status"] == "downgraded"  # the recorded KV answer contradicts admission overload


async def test_build_brain_from_the_daemon_brain_settings(llm_server: RecordedLLMServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from inferguard.config import BrainSettings

    monkeypatch.setenv("GMI_API_KEY", KEY)
    monkeypatch.setenv("GMI_BASE_URL", llm_server.base_url)
    monkeypatch.setenv("GMI_MODEL", "from-env")
    cfg = BrainSettings()  # type: ignore[call-arg]  # pydantic-settings reads the fields from the env
    brain = build_brain(cfg.brain_mode, url=cfg.brain_url, llm=cfg)
    llm_server.push(Reply.answer(CASES["real_vllm_kv_overload"]["llm_recorded"]["good"]))
    case = case_payload("real_vllm_kv_overload")
    answer = await brain.advise(build_incident_payload(case["incident"], case["window"], []))
    await brain.aclose()
    assert answer["diagnosis"]["source"] == "llm"
    assert llm_server.requests[0]["body"]["model"] == "from-env"
    assert KEY not in repr(cfg)


async def test_background_brain_never_blocks_and_keeps_the_newest(llm_server: RecordedLLMServer) -> None:
    from inferguard.brain import BackgroundBrain

    good = CASES["real_vllm_kv_overload"]["llm_recorded"]["good"]
    llm_server.push(Reply.slow(good, 0.5), Reply.answer(good))
    bg = BackgroundBrain(LocalBrain(settings(llm_server.base_url)), max_in_flight=1)
    case = case_payload("real_vllm_kv_overload")
    payload = build_incident_payload(case["incident"], case["window"], [])
    got: list[tuple[str, dict[str, Any]]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    bg.submit("inc-a", payload, lambda a: got.append(("first", a)))
    bg.submit("inc-b", payload, lambda a: got.append(("b", a)))   # waits for the single slot
    bg.submit("inc-b", payload, lambda a: got.append(("b-newer", a)))  # replaces the waiting one
    assert loop.time() - start < 0.05  # submit returns at once, the LLM is slow
    assert bg.in_flight == 3
    await bg.drain()
    await bg.aclose()
    assert [name for name, _ in got] == ["first", "b-newer"]
    assert all(a["diagnosis"]["root_cause"] == "kv_cache_exhaustion" for _, a in got)


async def test_background_brain_counts_failures() -> None:
    from inferguard.brain import BackgroundBrain

    bg = BackgroundBrain(LocalBrain())
    bad = case_payload("real_vllm_kv_overload")
    bad["engine"] = "tgi"
    got: list[object] = []
    bg.submit("inc-x", bad, got.append)
    await bg.drain()
    await bg.aclose()
    assert got == [] and bg.failures == 1 and "/engine" in (bg.last_error or "")


def test_the_daemon_settings_carry_the_llm_budget_share_and_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    from inferguard.brain import llm_settings
    from inferguard.config import BrainSettings

    monkeypatch.setenv("GMI_API_KEY", KEY)
    monkeypatch.setenv("INFERGUARD_LLM_PROACTIVE_SHARE", "0")
    monkeypatch.setenv("INFERGUARD_LLM_PRICE_INPUT_PER_MTOK", "0.6")
    monkeypatch.setenv("INFERGUARD_LLM_PRICE_OUTPUT_PER_MTOK", "2.4")
    s = llm_settings(BrainSettings())
    assert (s.proactive_share, s.price_input_per_mtok, s.price_output_per_mtok, s.max_calls_per_hour) == (
        0.0, 0.6, 2.4, 60)
    monkeypatch.setenv("INFERGUARD_LLM_PROACTIVE_SHARE", "inf")
    with pytest.raises(ValueError, match="llm_proactive_share"):
        BrainSettings()


async def test_the_daemon_publishes_the_llm_usage_as_metrics(llm_server: RecordedLLMServer) -> None:
    from inferguard.telemetry import Telemetry

    llm_server.push(Reply.answer(CASES["real_vllm_kv_overload"]["llm_recorded"]["good"]))
    s = settings(llm_server.base_url)
    s.llm_price_input_per_mtok, s.llm_price_output_per_mtok = 1.0, 3.0
    brain = LocalBrain(s)
    telemetry = Telemetry()
    telemetry.watch_llm(lambda: brain.usage)
    case = case_payload("real_vllm_kv_overload")
    await brain.advise(build_incident_payload(case["incident"], case["window"], []))
    await brain.aclose()
    value = telemetry.registry.get_sample_value
    assert value("inferguard_llm_calls_total", {"purpose": "incident"}) == 1.0
    assert value("inferguard_llm_calls_total", {"purpose": "proactive"}) == 0.0
    prompt = value("inferguard_llm_tokens_total", {"purpose": "incident", "kind": "prompt"})
    completion = value("inferguard_llm_tokens_total", {"purpose": "incident", "kind": "completion"})
    assert prompt and completion and prompt > 0 and completion > 0
    assert value("inferguard_llm_cost_usd_total", {"purpose": "incident"}) == pytest.approx(
        (prompt * 1.0 + completion * 3.0) / 1e6)
    assert value("inferguard_llm_budget_calls_per_hour", {"purpose": "proactive"}) == 2.0  # 10 x 0.25
    assert value("inferguard_llm_calls_last_hour", {"purpose": "incident"}) == 1.0


def test_without_an_llm_there_are_no_llm_metrics() -> None:
    from inferguard.telemetry import Telemetry

    telemetry = Telemetry()
    telemetry.watch_llm(lambda: LocalBrain(None).usage)
    assert telemetry.registry.get_sample_value("inferguard_llm_calls_total", {"purpose": "incident"}) is None
    assert telemetry.registry.get_sample_value("inferguard_llm_cost_usd_total", {"purpose": "incident"}) is None
