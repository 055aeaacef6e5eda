"""`inferguard watch` as a user runs it: a subprocess against a real loopback HTTP engine page.

The engine here is a real vLLM V1 capture (shared fixtures) served over HTTP, with three gauge values
rewritten per phase (clearly synthetic): healthy, then KV exhausted with a queue, then healthy again.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import clean_env, free_port, serve

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "engine-metrics"
PAGE = SHARED / "vllm-v1-2026-05-inferguard-lmcache-mp.prom"
pytestmark = pytest.mark.skipif(not PAGE.exists(), reason="../shared fixtures not present")


def rewrite(text: str, kv: float, waiting: float, running: float) -> str:
    text = re.sub(r'^(vllm:kv_cache_usage_perc\{[^}]*\}) \S+$', rf"\g<1> {kv}", text, flags=re.M)
    text = re.sub(r'^(vllm:num_requests_waiting\{[^}]*\}) \S+$', rf"\g<1> {waiting}", text, flags=re.M)
    return re.sub(r'^(vllm:num_requests_running\{[^}]*\}) \S+$', rf"\g<1> {running}", text, flags=re.M)


class Engine:
    def __init__(self) -> None:
        base = PAGE.read_text()
        self.pages = {"healthy": rewrite(base, 0.2, 0, 3), "overload": rewrite(base, 0.99, 40, 8)}
        self.phase = "healthy"


@pytest.fixture
def engine() -> Iterator[tuple[Engine, str]]:
    state = Engine()
    plain = {"Content-Type": "text/plain; version=0.0.4"}
    with serve(lambda _: (200, state.pages[state.phase].encode(), plain)) as base:
        yield state, base + "/metrics"


def test_watch_detects_reports_resolves_and_stops_cleanly(engine: tuple[Engine, str], tmp_path: Path) -> None:
    state, url = engine
    port = free_port()
    env = clean_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferguard", "watch", url, "--interval", "0.5", "--listen", f"127.0.0.1:{port}",
         "--record", str(tmp_path / "seen.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    lines: list[dict] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(json.loads(line))  # every stdout line must be one JSON object

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def wait_for(event: str, timeout: float = 20) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            hit = [x for x in lines if x.get("event") == event]
            if hit:
                return hit[-1]
            time.sleep(0.1)
        raise AssertionError(f"no {event} within {timeout}s; saw {[x.get('event') for x in lines]}")

    try:
        wait_for("cycle")
        time.sleep(2)
        assert not [x for x in lines if x.get("event", "").startswith("incident.")], "incident while healthy"
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["cycles"] >= 1
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200

        state.phase = "overload"
        opened = wait_for("incident.opened")["incident"]
        assert {"kv_pressure", "queue_buildup"} <= set(opened["codes"])
        assert opened["engine"] == "vllm-v1" and opened["model"] == "Qwen/Qwen3-8B"
        assert opened["diagnosis"]["source"] == "rules" and opened["diagnosis"]["root_cause"] == "kv_cache_exhaustion"
        assert all(a["advisory_only"] for a in opened["advisories"])
        own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'inferguard_open_anomalies{code="kv_pressure"' in own
        assert "inferguard_loop_lag_seconds_bucket" in own and "inferguard_scrapes_total" in own
        api = httpx.get(f"http://127.0.0.1:{port}/api/incidents?status=open", timeout=5).json()
        assert [i["id"] for i in api["incidents"]] == [opened["id"]]
        story = api["incidents"][0]  # the API carries the incident's lifecycle and diagnosis history
        assert story["events"][0]["kind"] == "opened" and story["events"][0]["ts"] == opened["opened_at"]
        assert story["diagnoses"][0]["root_cause"] == "kv_cache_exhaustion"

        state.phase = "healthy"
        resolved = wait_for("incident.resolved")["incident"]
        assert resolved["id"] == opened["id"] and resolved["resolved_at"] >= opened["opened_at"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    reader.join(timeout=5)
    assert proc.stdout is not None and proc.stderr is not None
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert rc == 0, err
    stopped = [x for x in lines if x.get("event") == "watch.stopped"]
    assert stopped and stopped[0]["opened"] == 1 and stopped[0]["resolved"] == 1
    # The recorded timeline replays to the same incident.
    out = subprocess.run([sys.executable, "-m", "inferguard", "replay", str(tmp_path / "seen.jsonl"), "--json"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=True).stdout
    replayed = json.loads(out)["incidents"]
    assert [i["fingerprint"] for i in replayed] == [opened["fingerprint"]]


def test_watch_keeps_going_when_a_target_is_dead(engine: tuple[Engine, str], tmp_path: Path) -> None:
    _, url = engine
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    env = clean_env()
    out = subprocess.run(
        [sys.executable, "-m", "inferguard", "watch", url, dead, "--interval", "0.3", "--no-listen", "--duration", "3"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    cycles = [e for e in events if e["event"] == "cycle"]
    # Both targets every cycle: scraped, or (on a loaded machine) still in flight from the last one.
    assert len(cycles) >= 5 and all(c["scraped"] + c.get("still_in_flight", 0) == 2 for c in cycles)
    opened = [e["incident"] for e in events if e["event"] == "incident.opened"]
    assert [(i["target"], i["codes"]) for i in opened] == [(dead, ["endpoint_unreachable"])]
