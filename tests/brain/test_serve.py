"""``rlm-agent serve`` as a real process on loopback, driven by InferGuard's RemoteBrain and raw HTTP."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferguard.brain import RemoteBrain, build_brain
from inferguard.brain.payloads import build_incident_payload, build_proactive_payload
from inferguard.errors import ConfigError, PayloadError
from rlm_agent.testing import RecordedLLMServer, Reply
from tests.support import free_port, started

from .conftest import CASES, case_payload

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-serve-test-SECRET"


@pytest.fixture(scope="module")
def llm_double() -> Iterator[RecordedLLMServer]:
    with RecordedLLMServer() as server:
        yield server


def serve(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with started([sys.executable, "-m", "rlm_agent.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                 f"{url}/healthz", what="rlm-agent serve", env=env, cwd=ROOT):
        yield url


@pytest.fixture(scope="module")
def served(llm_double: RecordedLLMServer) -> Iterator[str]:
    yield from serve({**os.environ, "GMI_API_KEY": KEY, "GMI_BASE_URL": llm_double.base_url,
                      "INFERGUARD_LLM_TIMEOUT_SECONDS": "10"})


@pytest.fixture(scope="module")
def served_rules() -> Iterator[str]:
    yield from serve({k: v for k, v in os.environ.items() if k != "GMI_API_KEY"})


async def test_remote_and_local_answer_alike(served_rules: str) -> None:
    remote, local = build_brain("remote", url=served_rules, llm=None), build_brain("local", url=None, llm=None)
    try:
        for name in sorted(CASES):
            case = case_payload(name)
            payload = build_incident_payload(case["incident"], case["window"], case["similar"])
            assert await remote.advise(payload) == await local.advise(payload), name
        window = case_payload("real_vllm_kv_overload")["window"]
        proactive = build_proactive_payload("http://e:8000", "vllm-v1", "tiny", window, [])
        assert await remote.investigate(proactive) == await local.investigate(proactive)
    finally:
        await remote.aclose()
        await local.aclose()


def test_healthz(served: str) -> None:
    body = httpx.get(f"{served}/healthz", trust_env=False).json()
    assert body == {"status": "ok", "schema_version": "1.0", "llm": True}


async def test_remote_brain_advises_through_the_llm(served: str, llm_double: RecordedLLMServer) -> None:
    llm_double.reset()
    llm_double.push(Reply.answer(CASES["real_vllm_kv_overload"]["llm_recorded"]["good"]))
    case = case_payload("real_vllm_kv_overload")
    payload = build_incident_payload(case["incident"], case["window"], [])
    brain = build_brain("remote", url=served, llm=None)
    try:
        answer = await brain.advise(payload)
    finally:
        await brain.aclose()
    assert answer["diagnosis"]["root_cause"] == "kv_cache_exhaustion"
    assert answer["diagnosis"]["source"] == "llm"
    assert len(llm_double.requests) == 1


async def test_remote_llm_failure_is_the_rules_answer(served: str, llm_double: RecordedLLMServer) -> None:
    llm_double.reset()
    llm_double.push(Reply.malformed())
    case = case_payload("real_vllm_admission_overload")
    brain = RemoteBrain(served)
    try:
        answer = await brain.advise(build_incident_payload(case["incident"], case["window"], []))
    finally:
        await brain.aclose()
    assert answer["diagnosis"]["root_cause"] == "admission_overload"
    assert answer["diagnosis"]["fallback_reason"].startswith("llm_invalid_json")
    assert KEY not in str(answer)


async def test_remote_investigate(served: str, llm_double: RecordedLLMServer) -> None:
    llm_double.reset()
    llm_double.default = Reply(status=503)
    window = [{"ts": 1000.0 + 3 * i, "values": {"kv_usage": 0.4 + 0.01 * i, "requests_running": 10.0}}
              for i in range(20)]
    brain = RemoteBrain(served)
    try:
        answer = await brain.investigate(build_proactive_payload("http://e:8000", "vllm-v1", "tiny", window, []))
    finally:
        await brain.aclose()
    assert answer["advisories"][0]["action"] == "throttle_concurrency"
    assert answer["diagnosis"]["fallback_reason"] == "llm_server_error"
    llm_double.default = None


@pytest.mark.parametrize("body, status, kind", [
    (b"{not json", 400, "payload_invalid"),
    (b'{"schema_version": "1.0"}', 400, "payload_invalid"),
    (b'{"schema_version": "9.0", "kind": "incident"}', 400, "payload_invalid"),
    (b"[" + b"0," * (1 << 20) + b"0]", 413, "payload_too_large"),
])
def test_bad_bodies_are_typed_http_errors(served: str, body: bytes, status: int, kind: str) -> None:
    r = httpx.post(f"{served}/v1/advise", content=body, headers={"content-type": "application/json"},
                   trust_env=False, timeout=10)
    assert r.status_code == status
    assert r.json()["error"]["type"] == kind


async def test_remote_brain_maps_a_rejected_payload_to_payload_error(served: str) -> None:
    payload: dict[str, Any] = case_payload("real_vllm_kv_overload")
    payload["window"][3]["values"]["kv_usage"] = "full"  # bypasses the builder on purpose
    brain = RemoteBrain(served)
    try:
        with pytest.raises(PayloadError) as info:
            await brain.advise(payload)
    finally:
        await brain.aclose()
    assert "HTTP 400" in str(info.value) and "/window/3/values/kv_usage" in str(info.value)


async def test_remote_brain_unreachable_is_payload_error() -> None:
    brain = RemoteBrain(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    try:
        with pytest.raises(PayloadError, match="ConnectError"):
            await brain.advise(case_payload("engine_down"))
    finally:
        await brain.aclose()


async def test_remote_brain_rejects_an_invalid_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"schema_version": "1.0", "diagnosis": {"root_cause": "vibes"},
                                         "advisories": []})

    brain = RemoteBrain("http://brain.test", transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(PayloadError, match="/diagnosis"):
            await brain.advise(case_payload("engine_down"))
    finally:
        await brain.aclose()


@pytest.mark.parametrize("mode, url, setting", [
    ("remote", None, "INFERGUARD_BRAIN_URL"),
    ("remote", "ftp://x", "INFERGUARD_BRAIN_URL"),
    ("cloud", None, "INFERGUARD_BRAIN_MODE"),
])
def test_build_brain_config_errors(mode: str, url: str | None, setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_brain(mode, url=url, llm=None)
    assert info.value.setting == setting
