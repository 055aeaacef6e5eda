"""The canary probe measured against a real vLLM on this CPU (the harness's tiny model)."""

from __future__ import annotations

import pytest

from inferguard.probes import LocalProbe
from tests.e2e.conftest import EngineArgs, EnginePool

pytestmark = pytest.mark.e2e


# In completion mode the tiny random-weight model's tokens detokenise to nothing: vLLM streams one chunk
# of "" per token, which the probe counts (tests/integration/test_probe_stream_shapes.py has the bytes).
@pytest.mark.parametrize("mode", ["chat", "completion"])
async def test_probe_measures_real_vllm(engines: EnginePool, mode: str) -> None:
    server = engines.get(EngineArgs())
    result = await LocalProbe(mode=mode, max_tokens=8, timeout_s=120).probe(server.metrics_url)
    assert result["ran"] is True and result["ok"] is True, result
    assert result["model"] == "tiny" and result["status"] == 200
    assert 1 <= result["tokens"] <= 8  # vLLM's own usage count; random weights may stop early
    assert result["ttft_s"] > 0
    # Time per output token is defined from the second token on; random weights may stop after one.
    assert (result["tpot_s"] is None) if result["tokens"] < 2 else (result["tpot_s"] > 0)
