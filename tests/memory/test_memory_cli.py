"""`inferguard replay --remember`, `recall` and `incidents list|show|note` as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from inferguard.cli_memory import parse_since
from inferguard.config import MemorySettings
from inferguard.memory.build import open_memory
from inferguard.memory.commands import RedisCommands
from inferguard.memory.remote import RemoteState
from tests.memory.docs import KV, story
from tests.memory.redis_server import RedisServer, replay_spool
from tests.support import run_inferguard

ROOT = Path(__file__).resolve().parents[2]
TIMELINE = ROOT / "tests" / "data" / "vllm_kv_overload.jsonl.gz"


def run(tmp_path: Path, *args: str, ok: bool = True, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    p = run_inferguard(tmp_path / "state", *args, env=env)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def test_replay_touches_no_memory_without_remember(tmp_path: Path) -> None:
    run(tmp_path, "replay", str(TIMELINE), "--json")
    assert not (tmp_path / "state").exists()


def test_replay_remember_then_list_show_recall_and_note(tmp_path: Path) -> None:
    run(tmp_path, "replay", str(TIMELINE), "--remember", "--json")
    run(tmp_path, "replay", str(TIMELINE), "--remember", "--json")  # twice: nothing doubles
    listed = json.loads(run(tmp_path, "incidents", "list", "--json").stdout)
    assert len(listed) == 1 and listed[0]["status"] == "resolved"
    inc_id = listed[0]["id"]
    assert json.loads(run(tmp_path, "incidents", "list", "--open", "--json").stdout) == []
    assert json.loads(run(tmp_path, "incidents", "list", "--target", "http://elsewhere/metrics", "--json").stdout) == []
    shown = json.loads(run(tmp_path, "incidents", "show", inc_id, "--json").stdout)
    kinds = [e["event"] for e in shown["timeline"]]
    assert kinds[0] == "incident.opened" and kinds[-1] == "incident.resolved" and kinds.count("incident.opened") == 1
    assert shown["diagnoses"] and shown["window"]
    hits = json.loads(run(tmp_path, "recall", "KV cache full", "--json").stdout)
    assert [h["id"] for h in hits] == [inc_id]
    assert json.loads(run(tmp_path, "recall", "KV cache full", "--target", "http://x/metrics", "--json").stdout) == []
    run(tmp_path, "incidents", "note", inc_id, "--failed", "--note", "raised gpu util, no change")
    assert "fix failed" in run(tmp_path, "incidents", "show", inc_id).stdout
    missing = run(tmp_path, "incidents", "show", "inc-nope", ok=False)
    assert missing.returncode == 1 and "inc-nope" in missing.stderr


def test_a_corrupt_memory_file_is_a_clear_error_at_the_command(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "inferguard.db").write_bytes(b"garbage" * 1000)
    p = run(tmp_path, "incidents", "list", ok=False)
    assert p.returncode == 70 and "unreadable" in p.stderr and "Traceback" not in p.stderr


def test_since_durations() -> None:
    assert parse_since("2h") == 7200 and parse_since("90") == 90 and parse_since("1.5d") == 129600
    with pytest.raises(Exception, match="duration"):
        parse_since("two hours")


async def _remember(state_dir: Path, redis_url: str, docs: list[dict[str, Any]]) -> None:
    """What a daemon with INFERGUARD_REDIS_URL leaves behind: the incident locally and in Redis."""
    m = open_memory(MemorySettings(state_dir=state_dir, redis_url=redis_url))  # type: ignore[arg-type]
    try:
        for d in docs:
            await m.record(d)
    finally:
        await m.aclose()


async def _outcome(redis_url: str, incident_id: str) -> dict[str, Any] | None:
    state = RemoteState(RedisCommands(redis_url))
    try:
        got = await state.get(incident_id)
        return None if got is None else got["outcome"]
    finally:
        await state.aclose()


@pytest.mark.redis
async def test_note_writes_through_to_the_configured_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    docs = story("http://a/metrics", 990_000.0, KV)
    inc_id = docs[0]["incident"]["id"]
    await _remember(tmp_path / "state", redis_server.url, docs)
    env = {"INFERGUARD_REDIS_URL": redis_server.url}
    p = run(tmp_path, "incidents", "note", inc_id, "--worked", "--note", "raised gpu-memory-utilization", env=env)
    assert "fix worked" in p.stdout and "redis" in p.stdout
    remote = await _outcome(redis_server.url, inc_id)
    assert remote is not None and remote["worked"] is True and remote["note"] == "raised gpu-memory-utilization"
    # A host whose embedded store never saw the incident still notes it in the shared Redis.
    other = tmp_path / "elsewhere"
    other.mkdir()
    run(other, "incidents", "note", inc_id, "--failed", env=env)
    assert (await _outcome(redis_server.url, inc_id) or {}).get("worked") is False
    missing = run(other, "incidents", "note", "inc-nope", "--failed", env=env, ok=False)
    assert missing.returncode == 1 and "inc-nope" in missing.stderr


@pytest.mark.redis
async def test_a_note_while_redis_is_down_is_spooled_and_arrives_later(
        tmp_path: Path, redis_server: RedisServer) -> None:
    docs = story("http://a/metrics", 990_000.0, KV)
    inc_id = docs[0]["incident"]["id"]
    await _remember(tmp_path / "state", redis_server.url, docs)
    redis_server.kill()
    p = run(tmp_path, "incidents", "note", inc_id, "--failed", env={"INFERGUARD_REDIS_URL": redis_server.url})
    assert "fix failed" in p.stdout and "did not answer" in p.stderr and "Traceback" not in p.stderr
    redis_server.start()
    assert await _outcome(redis_server.url, inc_id) is None  # not there yet: it waits in the spool
    await replay_spool(tmp_path / "state", redis_server.url)  # the next start replays the spool
    assert (await _outcome(redis_server.url, inc_id) or {}).get("worked") is False
