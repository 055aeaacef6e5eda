"""The simulator over real HTTP on loopback: httpx, the real openai SDK, scenario switching, crashes, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferguard.errors import ConfigError
from inferguard.simulate import SIMULATOR_INFO, EngineConfig, Simulator
from tests.support import free_port

pytestmark = pytest.mark.timeout(90)
MODEL = "sim/test-model"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    # speed 10: ten simulated seconds per second, so queues and crashes happen within a test
    async with Simulator(targets=3, speed=10.0, model=MODEL, seed=1,
                         engine=EngineConfig(crash_down_s=20.0, crash_up_s=600.0)) as s:
        yield s


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as c:
        yield c


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def value(text: str, name: str) -> float:
    found = samples(text, name)
    assert len(found) == 1, (name, found)
    return found[0][1]


async def test_metrics_page_is_prometheus_text(sim: Simulator, client: httpx.AsyncClient) -> None:
    r = await client.get(f"{sim.url}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert value(r.text, "vllm:num_requests_waiting") >= 0
    assert samples(r.text, SIMULATOR_INFO) == [({"scenario": "healthy"}, 1.0)]
    assert (await client.get(f"{sim.url}/health")).status_code == 200


async def test_each_target_has_its_own_path_and_state(sim: Simulator, client: httpx.AsyncClient) -> None:
    r = await client.post(f"{sim.url}/t/2/admin/scenario", json={"scenario": "admission_overload"})
    assert r.status_code == 200 and r.json() == {"scenario": "admission_overload", "targets": [2]}
    await asyncio.sleep(2.0)  # 20 simulated seconds
    pages = [(await client.get(f"{sim.target_url(i)}/metrics")).text for i in range(3)]
    assert [samples(p, SIMULATOR_INFO)[0][0]["scenario"] for p in pages] == ["healthy", "healthy", "admission_overload"]
    assert value(pages[2], "vllm:num_requests_waiting") > 20
    assert value(pages[1], "vllm:num_requests_waiting") < 5
    assert (await client.get(f"{sim.url}/t/3/metrics")).status_code == 404
    state = (await client.get(f"{sim.url}/t/2/admin/state")).json()
    assert state["target"] == 2 and state["scenario"] == "admission_overload" and state["max_num_seqs"] == 4


async def test_runtime_switch_changes_what_the_metrics_show(sim: Simulator, client: httpx.AsyncClient) -> None:
    r = await client.post(f"{sim.url}/admin/scenario", json={"scenario": "kv_pressure", "target": "all"})
    assert r.json()["targets"] == [0, 1, 2]
    await asyncio.sleep(3.0)  # 30 simulated seconds
    text = (await client.get(f"{sim.target_url(1)}/metrics")).text
    assert value(text, "vllm:kv_cache_usage_perc") > 0.8
    assert value(text, "vllm:num_preemptions_total") > 5
    assert samples(text, SIMULATOR_INFO)[0][0] == {"scenario": "kv_pressure"}


async def test_engine_crash_fails_everything_then_restarts_from_zero(
        sim: Simulator, client: httpx.AsyncClient) -> None:
    await asyncio.sleep(1.0)
    before = (await client.get(f"{sim.target_url(1)}/metrics")).text
    r = await client.post(f"{sim.url}/admin/scenario", json={"scenario": "engine_crash", "target": 1})
    assert r.status_code == 200
    for path in ("/metrics", "/health", "/v1/models"):
        assert (await client.get(f"{sim.target_url(1)}{path}")).status_code == 503, path
    r = await client.post(f"{sim.target_url(1)}/v1/completions", json={"model": MODEL, "prompt": "hi"})
    assert r.status_code == 503
    assert (await client.get(f"{sim.url}/metrics")).status_code == 200  # the other targets live on
    deadline = time.monotonic() + 10
    while (r := await client.get(f"{sim.target_url(1)}/metrics")).status_code == 503:
        assert time.monotonic() < deadline, "engine never came back"
        await asyncio.sleep(0.2)
    after = r.text
    assert value(after, "vllm:generation_tokens_created") > value(before, "vllm:generation_tokens_created")
    assert value(after, "process_start_time_seconds") > value(before, "process_start_time_seconds")
    assert value(after, "vllm:generation_tokens_total") < value(before, "vllm:generation_tokens_total")


async def test_openai_sdk_completions_chat_and_models(sim: Simulator) -> None:
    oc = openai.AsyncOpenAI(base_url=f"{sim.url}/v1", api_key="not-used", max_retries=0, timeout=20.0)
    try:
        models = await oc.models.list()
        assert [m.id for m in models.data] == [MODEL]
        done = await oc.completions.create(model=MODEL, prompt="The cache " * 30, max_tokens=24)
        assert done.choices[0].finish_reason == "length"
        assert done.usage is not None and done.usage.completion_tokens == 24
        assert len(done.choices[0].text.split()) == 24
        chat = await oc.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello"}],
                                                max_tokens=8)
        assert chat.choices[0].message.role == "assistant" and len(chat.choices[0].message.content or "") > 0
        with pytest.raises(openai.NotFoundError):
            await oc.completions.create(model="other-model", prompt="x", max_tokens=2)
    finally:
        await oc.close()


async def test_openai_sdk_streaming(sim: Simulator) -> None:
    oc = openai.AsyncOpenAI(base_url=f"{sim.url}/t/1/v1", api_key="not-used", max_retries=0, timeout=20.0)
    try:
        stream = await oc.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "stream please"}], max_tokens=30, stream=True,
            stream_options={"include_usage": True})
        text, finish, usage = "", None, None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            usage = chunk.usage or usage
        assert finish == "length" and len(text.split()) == 30
        assert usage is not None and usage.completion_tokens == 30
        comp = await oc.completions.create(model=MODEL, prompt="go", max_tokens=10, stream=True)
        pieces = [c.choices[0].text async for c in comp]
        assert len("".join(pieces).split()) == 10
    finally:
        await oc.close()


async def test_stream_is_sse_ending_with_done(sim: Simulator, client: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "prompt": "x" * 400, "max_tokens": 20, "stream": True}
    async with client.stream("POST", f"{sim.url}/v1/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln async for ln in r.aiter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln.removeprefix("data: ")) for ln in lines[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    r = await client.get(f"{sim.url}/metrics")
    assert value(r.text, "vllm:prompt_tokens_total") > 0


@pytest.mark.parametrize(("path", "body", "status", "needle"), [
    ("/v1/completions", b"{not json", 400, "not JSON"),
    ("/v1/completions", b'{"model": "sim/test-model", "prompt": 5}', 400, "prompt"),
    ("/v1/completions", b'{"model": "sim/test-model", "prompt": "x", "max_tokens": -1}', 400, "max_tokens"),
    ("/v1/completions", b'{"model": "sim/test-model", "prompt": "x", "n": 3}', 400, "n=1"),
    ("/v1/chat/completions", b'{"model": "sim/test-model", "messages": []}', 400, "messages"),
    ("/v1/completions", b'{"model": "nope", "prompt": "x"}', 404, "does not exist"),
    ("/admin/scenario", b'{"scenario": "meltdown"}', 400, "unknown scenario"),
    ("/admin/scenario", b'{"scenario": "healthy", "target": 7}', 404, "no target 7"),
    ("/admin/scenario", b'{"scenario": "healthy", "target": "x"}', 400, "target"),
    ("/admin/scenario", b"[]", 400, "scenario"),
])
async def test_bad_requests_get_clear_errors(sim: Simulator, client: httpx.AsyncClient, path: str, body: bytes,
                                             status: int, needle: str) -> None:
    r = await client.post(f"{sim.url}{path}", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert needle in r.json()["error"]["message"]


@pytest.mark.parametrize("dialect", ["vllm-v0", "sglang", "dcgm"])
async def test_other_dialects_over_http(dialect: str, client: httpx.AsyncClient) -> None:
    async with Simulator(targets=2, dialect=dialect, scenario="gpu_fault", model=MODEL, speed=20.0) as s:
        await asyncio.sleep(0.5)
        text = (await client.get(f"{s.target_url(1)}/metrics")).text
    names = {f.name for f in text_string_to_metric_families(text)}
    expected = {"vllm-v0": "vllm:gpu_cache_usage_perc", "sglang": "sglang:token_usage",
                "dcgm": "DCGM_FI_DEV_XID_ERRORS"}[dialect]
    assert expected in names and SIMULATOR_INFO in names


async def test_simulator_stops_and_frees_its_port(client: httpx.AsyncClient) -> None:
    s = Simulator(model=MODEL)
    await s.start()
    url = s.url
    assert (await client.get(f"{url}/health")).status_code == 200
    await s.stop()
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{url}/health")


def test_bad_simulator_arguments_are_config_errors() -> None:
    for kwargs, setting in (({"targets": 0}, "targets"), ({"dialect": "tgi"}, "dialect"),
                            ({"speed": 0.0}, "speed"), ({"scenario": "x"}, "scenario"),
                            ({"model": 'a"b'}, "model"), ({"port": 70000}, "port")):
        with pytest.raises(ConfigError) as err:
            Simulator(**kwargs)
        assert err.value.setting == setting


async def test_port_in_use_is_a_config_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        s = Simulator(port=busy.getsockname()[1])
        with pytest.raises(ConfigError, match="cannot listen"):
            await s.start()
        await s.stop()


def test_module_command_serves_and_exits_cleanly_on_sigterm() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "inferguard.simulate", "--port", str(port), "--targets", "2",
                             "--dialect", "sglang", "--scenario", "kv_pressure"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/t/1/metrics", timeout=2.0, trust_env=False)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "simulator did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and "sglang:token_usage" in r.text
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert f"http://127.0.0.1:{port}/metrics" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_module_command_rejects_bad_arguments() -> None:
    r = subprocess.run([sys.executable, "-m", "inferguard.simulate", "--targets", "0"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "targets" in r.stderr


def test_simulate_command_refuses_bad_arguments_before_listening() -> None:
    from inferguard.simulate import simulate_command

    with pytest.raises(ConfigError) as err:
        simulate_command(port=0, dialect="tgi")
    assert err.value.setting == "dialect"
