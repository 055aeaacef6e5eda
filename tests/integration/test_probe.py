"""Canary probes measured against a real OpenAI-compatible streaming server: `inferguard simulate` as an
operator runs it (a subprocess on a loopback port)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferguard.config import Settings
from inferguard.probes import DaytonaProbe, LocalProbe, api_base
from inferguard.probes.canary import parse_output
from inferguard.runtime.build import build_probe
from tests.support import clean_env, free_port, started

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with started([sys.executable, "-m", "inferguard", "simulate", "--port", str(port)], f"{base}/health",
                 what="simulator", timeout_s=60, env=clean_env()):
        yield base


@pytest.mark.parametrize("mode", ["chat", "completion"])
async def test_probe_measures_a_streaming_request(simulator: str, mode: str) -> None:
    result = await LocalProbe(mode=mode, max_tokens=8).probe(f"{simulator}/metrics")
    assert result["ran"] is True and result["ok"] is True, result
    assert result["status"] == 200 and result["error"] is None
    assert result["tokens"] >= 1 and result["ttft_s"] > 0
    assert result["tpot_s"] is None or result["tpot_s"] >= 0
    assert result["model"] == "sim/llama-3-8b-instruct"  # found through /v1/models


async def test_probe_of_a_dead_server_ran_and_failed() -> None:
    result = await LocalProbe(timeout_s=5).probe(f"http://127.0.0.1:{free_port()}/metrics")
    assert result["ran"] is True and result["ok"] is False
    assert "ConnectionRefused" in result["error"] and result["ttft_s"] is None


async def test_probe_of_an_unknown_model_reports_the_status(simulator: str) -> None:
    result = await LocalProbe(model="no-such-model").probe(simulator)
    assert result["ran"] is True and result["ok"] is False and result["status"] != 200


async def test_a_probe_that_did_not_run_says_so() -> None:
    assert parse_output("Traceback (most recent call last): ...", "local")["ran"] is False
    # Success without a measurement is not success.
    fake = json.dumps({"ok": True, "status": 200, "ttft_s": None, "tpot_s": None, "tokens": 0, "error": None})
    assert parse_output(fake, "local")["ok"] is False
    try:
        import daytona  # noqa: F401
    except ImportError:
        out = await DaytonaProbe("dtn-key", LocalProbe()).probe("http://127.0.0.1:9/metrics")
        assert out["ran"] is False and out["where"] == "daytona" and "not installed" in out["error"]
        assert "dtn-key" not in json.dumps(out)


def test_settings_choose_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(build_probe(Settings.load(env_file=None)), LocalProbe)
    monkeypatch.setenv("DAYTONA_API_KEY", "dtn-secret")
    s = Settings.load(env_file=None)
    assert isinstance(build_probe(s), DaytonaProbe) and "dtn-secret" not in str(s.redacted())


def test_api_base() -> None:
    assert api_base("http://h:8000/metrics") == "http://h:8000"
    assert api_base("https://h/engine-a/metrics") == "https://h/engine-a"


def test_canary_scripts_import_nothing_from_inferguard() -> None:
    for path in (ROOT / "canary_scripts").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "inferguard" for n in names), path


def test_probe_command(simulator: str) -> None:
    p = subprocess.run([sys.executable, "-m", "inferguard", "probe", f"{simulator}/metrics", "--n", "2"],
                       env=clean_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(lines) == 2 and all(r["ok"] and r["ran"] for r in lines)
    bad = subprocess.run([sys.executable, "-m", "inferguard", "probe", f"http://127.0.0.1:{free_port()}", "--n", "1"],
                         env=clean_env(), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and json.loads(bad.stdout)["ok"] is False
