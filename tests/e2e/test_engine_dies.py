"""An engine that cannot run its model dies loudly, and the harness says why (shared/REAL_VLLM.md).

A Llama with 16-wide attention heads is rejected by vLLM's CPU attention ("Unsupported CPU attention
configuration"), which kills the engine core. The harness must surface that as EngineError carrying the
engine's own log, never hang until the ready timeout and never leave processes behind.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.e2e.harness import EngineError, VllmServer, tiny_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def test_head_dim_16_kills_the_engine_and_the_harness_reports_it(vllm_python: Path, tmp_path: Path) -> None:
    model = tiny_model(vllm_python, head_dim_16=True)
    server = VllmServer(vllm_python, model, log_path=tmp_path / "vllm.log", ready_timeout=300)
    t0 = time.monotonic()
    with pytest.raises(EngineError) as info:
        server.start()
    elapsed = time.monotonic() - t0
    message = str(info.value)
    assert "exited with" in message, f"expected the engine to die, not time out ({elapsed:.0f}s):\n{message}"
    assert "Unsupported CPU attention" in message or "EngineDeadError" in message or "head" in message, message
    assert not server.alive
    pid = server._proc.pid if server._proc is not None else None  # the group leader is gone ...
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # ... and so is every child of its process group
