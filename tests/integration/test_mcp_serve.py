"""`inferguard serve` driven by the official MCP SDK's own client, over stdio and over streamable HTTP,
with a watcher on the simulator (real HTTP on loopback, synthetic data)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from inferguard.models import ANOMALY_CODES
from inferguard.simulate.server import Simulator
from tests.integration.api_support import wait_listening
from tests.support import clean_env, free_port

TOOLS = {"scan", "targets", "list_incidents", "show_incident", "recall", "explain_anomaly", "advisories"}
TOKEN = "mcp-test-token-0123456789"


def payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        doc = result.structured_content
        return doc.get("result", doc) if set(doc) == {"result"} else doc
    return json.loads(result.content[0].text)


async def wait_for_incident(session: ClientSession, timeout: float = 90) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = payload(await session.call_tool("list_incidents", {"code": "kv_pressure"}))
        if found["incidents"]:
            return found["incidents"][0]  # type: ignore[no-any-return]
        await anyio.sleep(1)
    raise AssertionError("no kv_pressure incident within the timeout")


async def exercise(session: ClientSession, target: str, *, full: bool = True) -> None:
    await session.initialize()
    tools = (await session.list_tools()).tools
    assert {t.name for t in tools} == TOOLS
    assert all(t.annotations and t.annotations.read_only_hint and not t.annotations.destructive_hint
               for t in tools)
    explained = payload(await session.call_tool("explain_anomaly", {"code": "kv_pressure"}))
    assert "KV cache" in explained["meaning"]
    bad = await session.call_tool("explain_anomaly", {"code": "kv_presure"})
    assert bad.is_error and "unknown anomaly code" in bad.content[0].text
    outside = await session.call_tool("scan", {"target": "http://169.254.169.254/metrics"})
    assert outside.is_error and "unknown target" in outside.content[0].text  # no scraping of arbitrary URLs
    status = payload(await session.call_tool("targets", {}))
    assert [t["target"] for t in status["targets"]] == [target]
    if not full:
        return  # the transport is what differs; the tools' behaviour is covered over stdio
    looked = payload(await session.call_tool("scan", {"target": target, "window_seconds": 1}))
    assert looked["engine"] == "vllm-v1" and looked["verdict"] in ("healthy", "warning", "critical")
    inc = await wait_for_incident(session)
    full = payload(await session.call_tool("show_incident", {"incident_id": inc["id"]}))
    assert full["diagnosis"]["root_cause"] == "kv_cache_exhaustion" and full["events"]
    recalled = payload(await session.call_tool("recall", {"query": "kv_pressure"}))
    assert inc["id"] in [r["id"] for r in recalled["results"]]
    adv = payload(await session.call_tool("advisories", {}))
    assert adv["advisory_only"] is True and all(a["advisory_only"] for a in adv["reactive"])


async def test_serve_over_stdio_with_the_sdk_client(tmp_path: Path) -> None:
    async with Simulator(scenario="kv_pressure", speed=5, seed=3) as sim:
        target = sim.target_url(0) + "/metrics"
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "inferguard", "serve", target, "--interval", "1"],
            env=clean_env() | {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}, cwd=str(tmp_path))
        with (tmp_path / "stderr.log").open("w") as errlog:
            with anyio.fail_after(180):
                async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as s:
                    await exercise(s, target)
        # The watcher logged to stderr as JSON lines; stdout carried only the protocol.
        lines = (tmp_path / "stderr.log").read_text().splitlines()
        assert any(json.loads(x).get("event") == "incident.opened" for x in lines if x.startswith("{"))


def test_serve_over_streamable_http_with_a_token(tmp_path: Path) -> None:
    port = free_port()

    async def main(target: str) -> None:
        headers = {"authorization": f"Bearer {TOKEN}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as client, \
                streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=client) as (read, write), \
                ClientSession(read, write) as s:
            await exercise(s, target, full=False)

    async def with_simulator() -> None:
        async with Simulator(scenario="kv_pressure", speed=5, seed=3) as sim:
            target = sim.target_url(0) + "/metrics"
            env = clean_env() | {"INFERGUARD_API_TOKEN": TOKEN}
            proc = subprocess.Popen([sys.executable, "-m", "inferguard", "serve", target, "--transport",
                                     "streamable-http", "--port", str(port), "--interval", "1"],
                                    env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                await anyio.to_thread.run_sync(wait_listening, port, 60)
                url = f"http://127.0.0.1:{port}/mcp"
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
                no_token = await anyio.to_thread.run_sync(lambda: httpx.post(url, json=body, timeout=10))
                assert no_token.status_code == 401
                rebinding = await anyio.to_thread.run_sync(lambda: httpx.post(
                    url, json=body, timeout=10, headers={"authorization": f"Bearer {TOKEN}",
                                                         "host": f"evil.example:{port}"}))
                assert rebinding.status_code in (400, 403, 421)
                with anyio.fail_after(180):
                    await main(target)
            finally:
                proc.send_signal(signal.SIGTERM)
                out, err = await anyio.to_thread.run_sync(lambda: proc.communicate(timeout=30))
            assert proc.returncode == 0, err.decode()[-2000:]
            assert TOKEN.encode() not in out + err

    anyio.run(with_simulator)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1"])
def test_serve_refuses_a_public_http_bind_without_token(host: str, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "inferguard", "serve", "--transport", "streamable-http", "--host",
                        host], env=clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 64 and "INFERGUARD_API_TOKEN" in p.stderr and "--host" in p.stderr


def test_every_anomaly_code_is_explained() -> None:
    from inferguard.explain import EXPLANATIONS, explain

    assert set(EXPLANATIONS) == set(ANOMALY_CODES)
    assert all(explain(c)["meaning"] and explain(c)["look_at"] for c in ANOMALY_CODES)
