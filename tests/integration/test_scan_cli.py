"""`inferguard scan` exit codes against real loopback HTTP: 0 healthy, 1 warning, 2 critical, 3 unreachable."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import clean_env, free_port, serve

HEALTHY = """# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 0.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.2
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} 5.0
"""
PAGES = {
    "/healthy": HEALTHY,
    "/warning": HEALTHY.replace("} 0.2", "} 0.9").replace("waiting{engine=\"0\",model_name=\"m\"} 0.0",
                                                         "waiting{engine=\"0\",model_name=\"m\"} 12.0"),
    "/critical": HEALTHY.replace("} 0.2", "} 0.99").replace("waiting{engine=\"0\",model_name=\"m\"} 0.0",
                                                          "waiting{engine=\"0\",model_name=\"m\"} 80.0"),
    "/html": "<!DOCTYPE html><html></html>",
}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serve(lambda path: PAGES[path].encode()) as url:
        yield url


def run(url: str, tmp_path: Path) -> tuple[int, dict]:
    env = clean_env()
    p = subprocess.run([sys.executable, "-m", "inferguard", "scan", url, "--window", "0.2", "--json"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    return p.returncode, json.loads(p.stdout)


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/metrics"


@pytest.mark.parametrize(("path", "code", "verdict"),
                         [("/healthy", 0, "healthy"), ("/warning", 1, "warning"), ("/critical", 2, "critical"),
                          ("/html", 3, "unreachable")])
def test_scan_exit_codes(base: str, tmp_path: Path, path: str, code: int, verdict: str) -> None:
    rc, out = run(base + path, tmp_path)
    assert (rc, out["verdict"]) == (code, verdict)
    if path == "/critical":
        assert {"kv_pressure", "queue_buildup"} <= {a["code"] for a in out["anomalies"]}
        assert out["diagnosis"]["source"] == "rules" and out["diagnosis"]["root_cause"]
    if path == "/healthy":
        assert out["diagnosis"] is None and out["advisories"] == []
    if path == "/html":
        assert out["error"] == "not_metrics"


def test_scan_unreachable(tmp_path: Path) -> None:
    rc, out = run(dead_url(), tmp_path)
    assert rc == 3 and out["error"] == "refused"


def test_record_writes_a_timeline_that_replays(base: str, tmp_path: Path) -> None:
    env = clean_env()
    out = tmp_path / "t.jsonl.gz"
    p = subprocess.run([sys.executable, "-m", "inferguard", "record", base + "/critical", "--out", str(out),
                        "--interval", "0.2", "--duration", "1.5"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    from inferguard.sources.timeline import read_timeline

    scrapes = list(read_timeline(out))
    assert 5 <= len(scrapes) <= 9 and all(s.ok for s in scrapes)
    assert [s.ts for s in scrapes] == sorted(s.ts for s in scrapes)
    replayed = subprocess.run([sys.executable, "-m", "inferguard", "replay", str(out), "--json"],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=True)
    (inc,) = json.loads(replayed.stdout)["incidents"]
    assert {"kv_pressure", "queue_buildup"} <= set(inc["codes"]) and inc["resolved_at"] is None
