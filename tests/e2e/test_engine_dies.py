"""An engine that cannot run its model dies, and the harness says why (shared/REAL_VLLM.md).

A Llama with 16-wide attention heads passes vLLM 0.32's start-up on this CPU (it answers /health), but
the first real forward pass hits "Unsupported CPU attention configuration" and kills the engine core
(EngineDeadError). What a user meets: the request fails, the server process exits by itself, the log says
why, and nothing is left running.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import EngineError, VllmServer, live_group_members, tiny_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def test_head_dim_16_kills_the_engine_on_first_use(vllm_python: Path, tmp_path: Path) -> None:
    model = tiny_model(vllm_python, head_dim_16=True)
    server = VllmServer(vllm_python, model, log_path=tmp_path / "vllm.log", ready_timeout=300)
    try:
        try:
            server.start()
        except EngineError as exc:  # an engine that dies during its own warm-up is the same failure
            assert "exited with" in str(exc), str(exc)
        else:
            body = {"model": "tiny", "prompt": " hello world", "max_tokens": 4}
            with httpx.Client(trust_env=False, timeout=120) as client:
                try:
                    status = client.post(server.base_url + "/v1/completions", json=body).status_code
                except httpx.HTTPError:
                    status = None  # the server went away mid-request: also a failure the user sees
            assert status != 200, "a head_dim 16 model answered a completion on CPU"
            code = server.wait_exit(120)
            assert code is not None, f"engine still running after its core died:\n{server.log_tail()}"
        log = server.log_tail(400)
        assert "Unsupported CPU attention" in log or "EngineDeadError" in log, log
        assert not server.alive
    finally:
        pid = server._proc.pid if server._proc is not None else None
        server.stop()
    assert pid is not None
    deadline = time.monotonic() + 10
    while live_group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not live_group_members(pid), "engine processes left running"
