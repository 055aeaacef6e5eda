"""`inferguard watch` with incident memory, as an operator runs it: against the simulator, stopped with
SIGTERM and started again (nothing forgotten, nothing re-paged), and with a real redis-server killed in
the middle of the run (every incident and event arrives exactly once)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_support import Watch, env_for
from tests.memory.redis_server import REDIS, RedisServer
from tests.support import free_port, started


@contextlib.contextmanager
def simulate(tmp_path: Path, scenario: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with started([sys.executable, "-m", "inferguard", "simulate", "--scenario", scenario, "--port", str(port),
                  "--speed", "4", "--seed", "3"], url, what="simulator", env=env_for(tmp_path), cwd=tmp_path):
        yield url


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    with simulate(tmp_path, "kv_pressure") as url:
        yield url


@pytest.fixture
def healthy(tmp_path: Path) -> Iterator[str]:
    with simulate(tmp_path, "healthy") as url:
        yield url


def state_doc(tmp_path: Path, key: str) -> dict[str, Any]:
    with sqlite3.connect(tmp_path / "state" / "inferguard.db") as c:
        row = c.execute("SELECT doc FROM state WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else {}


def baseline_counts(doc: dict[str, Any]) -> dict[tuple[str, str, str], int]:
    return {(s["target"], s["model"], name): b["n"] for s in doc.get("streams", [])
            for name, b in s.get("baselines", {}).items()}


def test_a_restart_keeps_the_incident_open_without_a_second_opened(tmp_path: Path, simulator: str,
                                                                     healthy: str) -> None:
    # Two engines: one under KV pressure (the incident), one healthy (whose baselines must be kept).
    args = [simulator, healthy, "--interval", "0.5", "--no-listen"]
    first = Watch(args, env_for(tmp_path), tmp_path)
    try:
        assert first.wait_for(lambda: first.events("incident.opened"), 120), "".join(first.raw[-20:])
        assert first.wait_for(lambda: len(first.events("cycle")) >= 12, 60)  # baselines need healthy samples
    finally:
        assert first.stop() == 0
    (opened,) = [e for e in first.events("incident.opened") if e["incident"]["target"] == simulator]
    inc_id = opened["incident"]["id"]
    assert not first.events("incident.resolved")
    saved = state_doc(tmp_path, "detectors")
    before = baseline_counts(saved)
    assert before, "the first run learned no baseline to keep"
    assert [i["id"] for i in state_doc(tmp_path, "incidents.open")["incidents"]] == [inc_id]
    assert any(k[0] == healthy for k in before)

    second = Watch(args, env_for(tmp_path), tmp_path)
    try:
        assert second.wait_for(lambda: second.events("memory.restored"), 60), "".join(second.raw[-20:])
        assert second.wait_for(lambda: len(second.events("cycle")) >= 8, 60)
    finally:
        assert second.stop() == 0
    (restored,) = second.events("memory.restored")
    assert restored["incidents"] == 1
    assert second.events("incident.opened") == []  # no second page
    assert all(e["incident"]["id"] == inc_id for e in second.events("incident.updated"))
    after = baseline_counts(state_doc(tmp_path, "detectors"))
    assert all(after.get(k, 0) >= n for k, n in before.items())  # kept, not relearned from zero
    assert second.events("incident.opened") == [] and not second.events("memory.restore_failed")
    listed = subprocess.run([sys.executable, "-m", "inferguard", "incidents", "list", "--open", "--json"],
                            env=env_for(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert [i["id"] for i in json.loads(listed.stdout)] == [inc_id]
    shown = json.loads(subprocess.run([sys.executable, "-m", "inferguard", "incidents", "show", inc_id, "--json"],
                                      env=env_for(tmp_path), cwd=tmp_path, capture_output=True, text=True,
                                      timeout=60).stdout)
    assert [e["event"] for e in shown["timeline"]].count("incident.opened") == 1


@pytest.mark.redis
@pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (scripts/test_deps.sh installs it)")
def test_redis_killed_mid_watch_gets_every_incident_and_event_exactly_once(tmp_path: Path, simulator: str) -> None:
    import redis

    server = RedisServer(tmp_path / "redis")
    server.start()
    watch = Watch([simulator, "--interval", "0.5", "--no-listen"],
                  env_for(tmp_path, INFERGUARD_REDIS_URL=server.url, INFERGUARD_MEMORY_TIMEOUT_SECONDS="0.5"),
                  tmp_path)
    try:
        assert watch.wait_for(lambda: watch.events("incident.opened"), 120), "".join(watch.raw[-20:])
        server.kill()
        assert watch.wait_for(lambda: watch.events("memory.degraded"), 60), "".join(watch.raw[-20:])
        n = len(watch.events("cycle"))
        assert watch.wait_for(lambda: len(watch.events("cycle")) >= n + 6, 60)  # the loop kept running
        server.start()
        assert watch.wait_for(lambda: watch.events("memory.recovered"), 90), "".join(watch.raw[-30:])
        time.sleep(1)
    finally:
        code = watch.stop()
    try:
        assert code == 0
        with sqlite3.connect(tmp_path / "state" / "inferguard.db") as c:
            local = [json.loads(d) for (d,) in c.execute("SELECT doc FROM events ORDER BY seq")]
            assert c.execute("SELECT count(*) FROM spool").fetchone()[0] == 0
            incidents = {i for (i,) in c.execute("SELECT id FROM incidents")}
        r = redis.Redis(port=server.port, decode_responses=True)
        remote = [json.loads(f["doc"]) for _, f in r.xrange("inferguard:events")]
        assert [e["key"] for e in remote] == [e["key"] for e in local]  # each once, in order
        assert len({e["key"] for e in remote}) == len(remote)
        assert set(r.zrange("inferguard:incidents", 0, -1)) == incidents
        r.close()
    finally:
        server.stop()
