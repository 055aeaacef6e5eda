"""`inferguard silence add|list|expire` and `actions list` against the CONFIGURED memory, as an operator runs
them: with a real redis-server as incident memory's state, a silence made from the CLI is the one the
daemon's notifier (built over that Redis, from another state directory) holds, and expiring it ends it.
With Redis down, the commands fail in one line naming it and change nothing. Upstash Redis (the loopback
protocol double of its REST API, tests/memory/upstash_double.py, over a real redis-server) alike."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from inferguard.actuation import GateConfig, WebhookActuator
from inferguard.config import Settings
from inferguard.memory.build import open_memory
from inferguard.runtime.build import build_notifier
from inferguard.testing import FakeClock
from tests.alerting_support import receiver
from tests.memory.redis_server import PASSWORD, RedisServer
from tests.memory.upstash_double import UpstashDouble
from tests.support import free_port, run_inferguard

pytestmark = pytest.mark.redis
TARGET = "http://vllm-a:8000/metrics"


def run(state: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_inferguard(state, *args, env=env)


def ok(p: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert p.returncode == 0, p.stderr
    assert PASSWORD not in p.stdout + p.stderr
    return p


def event(iid: str, code: str) -> dict[str, Any]:
    inc = {"id": iid, "target": TARGET, "engine": "vllm-v1", "model": "m", "severity": "warning", "status": "open",
           "codes": [code], "anomalies": [{"code": code, "active": True}], "opened_at": time.time()}
    return {"event": "incident.opened", "ts": time.time(), "changes": [], "incident": inc}


async def heard(tmp_path: Path, redis_url: str, hook: str, events: list[dict[str, Any]]) -> int:
    """Send ``events`` through a notifier built as the daemon builds it, over the Redis state, from a state
    directory of its own (so nothing can come from the CLI's embedded store); returns deliveries."""
    settings = Settings.load(env_file=None, memory={"redis_url": redis_url, "state_dir": tmp_path / "daemon"},
                             notify={"webhook_url": hook})
    memory = open_memory(settings.memory)
    notifier = build_notifier(settings, memory, clock=FakeClock(time.time()))  # the CLI's silences are wall-clock
    assert notifier is not None
    try:
        for e in events:
            await notifier.send(e)
        return int(notifier.counts.get("delivered", 0))
    finally:
        await notifier.aclose()
        await memory.aclose()


async def test_a_silence_from_the_cli_holds_in_a_notifier_over_the_same_redis(
        tmp_path: Path, locked_redis: RedisServer) -> None:
    env = {"INFERGUARD_REDIS_URL": locked_redis.url}
    sil = json.loads(ok(run(tmp_path / "cli", "silence", "add", "--target", "http://vllm-a*", "--code", "kv_pressure",
                            "--for", "2h", "--comment", "resizing the pool", env=env)).stdout)
    # Another host's CLI (its own state directory) lists it: it lives in Redis.
    listed = [json.loads(line) for line in ok(run(tmp_path / "other", "silence", "list", env=env)).stdout.splitlines()]
    assert [s["id"] for s in listed] == [sil["id"]]
    with receiver() as rec:
        hook = f"{rec.url}/hook"
        # Silenced: kv_pressure on that target; a new kind of trouble on it still pages.
        assert await heard(tmp_path, locked_redis.url, hook, [event("inc-1", "kv_pressure")]) == 0
        assert await heard(tmp_path, locked_redis.url, hook, [event("inc-2", "queue_buildup")]) == 1
        ok(run(tmp_path / "other", "silence", "expire", sil["id"], env=env))
        assert await heard(tmp_path, locked_redis.url, hook, [event("inc-3", "kv_pressure")]) == 1
        assert [r.json()["groupLabels"]["incident_id"] for r in rec.on("/hook")] == ["inc-2", "inc-3"]
    assert ok(run(tmp_path / "cli", "silence", "list", env=env)).stdout == ""
    assert sil["id"] in ok(run(tmp_path / "cli", "silence", "list", "--all", env=env)).stdout


async def test_actions_list_reads_the_audit_the_actuator_keeps_in_redis(
        tmp_path: Path, locked_redis: RedisServer) -> None:
    settings = Settings.load(env_file=None, memory={"redis_url": locked_redis.url, "state_dir": tmp_path / "daemon"})
    memory = open_memory(settings.memory)
    act = WebhookActuator(GateConfig(mode="dry_run", allowlist=frozenset({"throttle_concurrency"})), memory)
    advisory = {"action": "throttle_concurrency", "confidence": 0.9, "parameters": {"max_concurrency": 4}}
    inc = {"id": "inc-9", "target": TARGET, "model": "m", "severity": "critical", "synthetic": False}
    entry = await act.act(advisory, inc)
    await act.aclose()
    await memory.aclose()
    p = ok(run(tmp_path / "cli", "actions", "list", env={"INFERGUARD_REDIS_URL": locked_redis.url}))
    (listed,) = [json.loads(line) for line in p.stdout.splitlines()]
    assert listed["outcome"] == "dry_run" and listed["key"] == entry["key"]


def test_with_redis_down_the_commands_say_so_in_one_line_and_change_nothing(tmp_path: Path) -> None:
    dead = {"INFERGUARD_REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0",
            "INFERGUARD_MEMORY_TIMEOUT_SECONDS": "2"}
    runs = {
        "silence add": run(tmp_path / "cli", "silence", "add", "--target", "*", "--code", "*", "--for", "1h",
                           "--comment", "x", env=dead),
        "silence list": run(tmp_path / "cli", "silence", "list", env=dead),
        "silence expire": run(tmp_path / "cli", "silence", "expire", "sil-00000000", env=dead),
        "actions list": run(tmp_path / "cli", "actions", "list", env=dead),
    }
    for command, p in runs.items():
        assert p.returncode == 70, (command, p.stderr)
        (line,) = p.stderr.strip().splitlines()
        assert line.startswith(f"inferguard: {command}: the state backend redis (INFERGUARD_REDIS_URL) did not answer")
        assert PASSWORD not in p.stdout + p.stderr and "Traceback" not in p.stderr
        assert p.stdout == ""
    assert "nothing was changed" in runs["silence add"].stderr
    # Nothing was written here either: without Redis configured, the embedded store has no silence.
    assert ok(run(tmp_path / "cli", "silence", "list", "--all", env={})).stdout == ""


def test_silences_through_upstash_redis_and_a_clear_line_when_it_is_down(
        tmp_path: Path, upstash: UpstashDouble) -> None:
    env = {"UPSTASH_REDIS_REST_URL": upstash.url, "UPSTASH_REDIS_REST_TOKEN": upstash.token}
    sil = json.loads(ok(run(tmp_path / "one-host", "silence", "add", "--target", "*", "--code", "kv_pressure",
                            "--for", "30m", "--comment", "maintenance", env=env)).stdout)
    listed = ok(run(tmp_path / "other-host", "silence", "list", env=env)).stdout
    assert [json.loads(line)["id"] for line in listed.splitlines()] == [sil["id"]]
    upstash.fail = "down"
    down = run(tmp_path / "other-host", "silence", "expire", sil["id"], env=env)
    assert down.returncode == 70 and down.stdout == ""
    (line,) = down.stderr.strip().splitlines()
    assert line.startswith("inferguard: silence expire: the state backend upstash (UPSTASH_REDIS_REST_URL) did not "
                           "answer") and line.endswith("nothing was changed")
    assert upstash.token not in down.stderr
    upstash.fail = None
    assert sil["id"] in ok(run(tmp_path / "one-host", "silence", "list", env=env)).stdout  # still active
