"""`replay --remember`, `recall` and `incidents list|show` against the CONFIGURED memory, as a user runs
them: a real redis-server, and the real upstash-vector SDK against the loopback protocol double of
Upstash's REST API (tests/memory/upstash_double.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from inferguard.memory.commands import RedisCommands
from inferguard.memory.remote import RemoteState
from tests.memory.redis_server import PASSWORD, RedisServer, replay_spool
from tests.memory.upstash_double import UpstashDouble
from tests.support import run_inferguard

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]
TIMELINE = ROOT / "tests" / "data" / "vllm_kv_overload.jsonl.gz"


def run(state: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = run_inferguard(state, *args, env=env)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return p


def warnings(p: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in p.stderr.splitlines() if "warning" in line]


def events_remembered(p: subprocess.CompletedProcess[str]) -> int:
    found = re.search(r"remembered \d+ incident\(s\), (\d+) event\(s\)", p.stderr)
    assert found, p.stderr
    return int(found.group(1))


async def in_redis(url: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    state = RemoteState(RedisCommands(url))
    try:
        return await state.list_incidents(), await state.count()
    finally:
        await state.aclose()


async def test_replay_remember_lands_in_the_configured_redis(tmp_path: Path, locked_redis: RedisServer) -> None:
    env = {"INFERGUARD_REDIS_URL": locked_redis.url}
    p = run(tmp_path / "state", "replay", str(TIMELINE), "--remember", "--json", env=env)
    ids = [i["id"] for i in json.loads(p.stdout)["incidents"]]
    n_events = events_remembered(p)
    assert ids and n_events and "state: redis" in p.stderr and not warnings(p)
    assert PASSWORD not in p.stdout + p.stderr
    remote, counts = await in_redis(locked_redis.url)
    assert [i["id"] for i in remote] == ids
    assert counts["events"] == n_events and counts["incidents"] == len(ids)


async def test_replay_remember_with_redis_down_spools_and_loses_nothing(
        tmp_path: Path, locked_redis: RedisServer) -> None:
    env = {"INFERGUARD_REDIS_URL": locked_redis.url}
    locked_redis.kill()
    p = run(tmp_path / "state", "replay", str(TIMELINE), "--remember", "--json", env=env)
    ids = [i["id"] for i in json.loads(p.stdout)["incidents"]]
    n_events = events_remembered(p)
    [warning] = warnings(p)
    spooled = re.search(r"(\d+) write\(s\) kept in the embedded store's spool", warning)
    assert "redis did not answer" in warning and spooled and int(spooled.group(1)) >= n_events
    assert PASSWORD not in p.stdout + p.stderr
    locked_redis.start()
    assert (await in_redis(locked_redis.url))[1]["events"] == 0  # not there yet: it waits in the spool
    await replay_spool(tmp_path / "state", locked_redis.url)  # the next start replays the spool
    remote, counts = await in_redis(locked_redis.url)
    assert [i["id"] for i in remote] == ids and counts["events"] == n_events  # every event, exactly once


async def test_incidents_list_and_show_read_the_configured_redis(tmp_path: Path, locked_redis: RedisServer) -> None:
    env = {"INFERGUARD_REDIS_URL": locked_redis.url}
    p = run(tmp_path / "one-host", "replay", str(TIMELINE), "--remember", "--json", env=env)
    [inc_id] = [i["id"] for i in json.loads(p.stdout)["incidents"]]
    # Another host: its embedded store never saw the incident; the shared Redis did.
    other = tmp_path / "other-host"
    listed = run(other, "incidents", "list", "--json", env=env)
    assert [i["id"] for i in json.loads(listed.stdout)] == [inc_id] and not warnings(listed)
    shown = run(other, "incidents", "show", inc_id, "--json", env=env)
    kinds = [e["event"] for e in json.loads(shown.stdout)["timeline"]]
    assert kinds[0] == "incident.opened" and kinds[-1] == "incident.resolved"
    # Redis down: the embedded store answers (it knows nothing here) and one line says why.
    locked_redis.kill()
    down = run(other, "incidents", "list", "--json", env=env)
    assert json.loads(down.stdout) == []
    [warning] = warnings(down)
    assert "answered from the embedded store, not redis" in warning and "Connection" in warning
    assert PASSWORD not in down.stdout + down.stderr


def test_recall_asks_upstash_vector_and_falls_back_with_a_reason(tmp_path: Path, upstash: UpstashDouble) -> None:
    env = {"UPSTASH_VECTOR_REST_URL": upstash.url, "UPSTASH_VECTOR_REST_TOKEN": upstash.vector_token}
    here, other = tmp_path / "one-host", tmp_path / "other-host"
    p = run(here, "replay", str(TIMELINE), "--remember", "--json", env=env)
    [inc_id] = [i["id"] for i in json.loads(p.stdout)["incidents"]]
    assert "recall: upstash-vector" in p.stderr and upstash.vectors
    # Another host knows the incident only through the vector index.
    queries = sum(1 for path, _ in upstash.requests if path == "/query-data")
    hits = run(other, "recall", "KV cache full", "--json", env=env)
    assert [h["id"] for h in json.loads(hits.stdout)] == [inc_id] and not warnings(hits)
    assert sum(1 for path, _ in upstash.requests if path == "/query-data") == queries + 1
    # The vector endpoint dead: the embedded store answers, and one line on stderr says why.
    upstash.fail = "down"
    local = run(here, "recall", "KV cache full", "--json", env=env)
    assert [h["id"] for h in json.loads(local.stdout)] == [inc_id]
    [warning] = warnings(local)
    assert "answered from the embedded store, not upstash-vector" in warning
    assert upstash.vector_token not in local.stdout + local.stderr
    nothing = run(other, "recall", "KV cache full", "--json", env=env)
    assert json.loads(nothing.stdout) == [] and len(warnings(nothing)) == 1


def test_incidents_list_reads_upstash_redis_when_it_serves_state(tmp_path: Path, upstash: UpstashDouble) -> None:
    env = {"UPSTASH_REDIS_REST_URL": upstash.url, "UPSTASH_REDIS_REST_TOKEN": upstash.token}
    p = run(tmp_path / "one-host", "replay", str(TIMELINE), "--remember", "--json", env=env)
    [inc_id] = [i["id"] for i in json.loads(p.stdout)["incidents"]]
    assert "state: upstash" in p.stderr and not warnings(p)
    listed = run(tmp_path / "other-host", "incidents", "list", "--json", env=env)
    assert [i["id"] for i in json.loads(listed.stdout)] == [inc_id] and not warnings(listed)
    assert upstash.token not in p.stderr + listed.stderr
