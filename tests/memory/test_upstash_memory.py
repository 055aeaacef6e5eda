"""Upstash Redis + Upstash Vector through the REAL ``upstash-redis`` and ``upstash-vector`` SDKs, against
a loopback protocol double of Upstash's REST API (tests/memory/upstash_double.py) whose Redis part is a
real redis-server. The last test runs against a real Upstash account when credentials are given."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from inferguard.config import Settings
from inferguard.errors import ConfigError
from inferguard.incidents import IncidentBook
from inferguard.memory.build import open_memory
from inferguard.memory.commands import UpstashCommands
from inferguard.memory.remote import RemoteState
from inferguard.memory.sqlite import SqliteStore
from inferguard.memory.store import Memory
from inferguard.memory.vector import VectorRecall
from tests.memory.docs import KV, QUEUE, TTFT, story
from tests.memory.upstash_double import UpstashDouble

pytestmark = pytest.mark.redis
T0 = 990_000.0


def memory(tmp_path: Path, url: str, logs: list[tuple[str, dict[str, Any]]], *, token: str = "test-token",
           vector_token: str = "vector-token", ns: str = "inferguard") -> Memory:
    state = RemoteState(UpstashCommands(url, token, timeout_s=1.0), namespace=ns)
    vector = VectorRecall(url, vector_token, namespace=ns, timeout_s=1.0)
    return Memory(SqliteStore(tmp_path / f"{ns}.db"), state=state, vector=vector, retry_min_s=0.05,
                  retry_max_s=0.2, log=lambda event, **kw: logs.append((event, kw)))


async def test_state_and_recall_through_the_sdks(tmp_path: Path, upstash: UpstashDouble) -> None:
    logs: list[tuple[str, dict[str, Any]]] = []
    m = memory(tmp_path, upstash.url, logs)
    await m.start()
    try:
        book = IncidentBook(resolve_after=1)
        kv, q = story("http://a/metrics", T0, KV, book=book), story("http://b/metrics", T0 + 100, QUEUE, book=book)
        for d in kv + q + kv:
            await m.record(d)
        kv_id = kv[0]["incident"]["id"]
        got = await m.get(kv_id)
        assert got is not None and got["status"] == "resolved" and len(got["timeline"]) == 3
        assert [e["event"] for e in await m.state.events()][:3] == [  # type: ignore[union-attr]
            "incident.opened", "incident.updated", "incident.resolved"]
        assert len(await m.state.events()) == 6  # type: ignore[union-attr]
        hits = await m.recall("KV cache full preempted")
        assert hits[0]["id"] == kv_id and 0.5 < hits[0]["score"] <= 1.0 and hits[0]["codes"] == ["kv_pressure"]
        assert [h["id"] for h in await m.recall("KV cache", target="http://b/metrics")] == [q[0]["incident"]["id"]]
        assert await m.recall("KV cache", engine="sglang") == []
        await m.save("baselines", {"n": 3})
        assert await m.load("baselines") == {"n": 3}
        assert m.vector is not None and (await m.vector.fetch(kv_id) or {}).get("target") == "http://a/metrics"
        assert await m.vector.forget([kv_id]) == 1 and await m.vector.fetch(kv_id) is None
        paths = {p for p, _ in upstash.requests}
        assert {"/", "/pipeline", "/upsert-data", "/query-data", "/fetch", "/delete"} <= paths
        assert logs == []
    finally:
        await m.aclose()


async def test_an_outage_spools_and_replays_exactly_once_and_recall_degrades(
        tmp_path: Path, upstash: UpstashDouble) -> None:
    logs: list[tuple[str, dict[str, Any]]] = []
    m = memory(tmp_path, upstash.url, logs)
    await m.start()
    book = IncidentBook(resolve_after=1)
    stories = [story(f"http://t{i}/metrics", T0 + i * 100, s, book=book) for i, s in enumerate((KV, QUEUE, TTFT))]
    try:
        for d in stories[0]:
            await m.record(d)
        upstash.fail = "down"
        for d in stories[1]:
            await m.record(d)
        hits = await m.recall("requests waiting batch slot")  # answered by the embedded store
        assert hits and hits[0]["target"] == "http://t1/metrics"
        assert {e for e, _ in logs} >= {"memory.degraded"}
        assert set(m.degraded) == {"upstash", "upstash-vector"}
        upstash.fail = None
        for d in stories[2]:
            await m.record(d)
        assert await m.settle(30), m.degraded
        got = [(e["incident_id"], e["event"]) for e in await m.state.events()]  # type: ignore[union-attr]
        assert got == [(d["incident"]["id"], d["event"]) for s in stories for d in s]
        assert len(upstash.vectors) == 3
    finally:
        await m.aclose()


async def test_wrong_tokens_are_refused_at_start_by_name(tmp_path: Path, upstash: UpstashDouble) -> None:
    m = memory(tmp_path, upstash.url, [], token="nope")
    with pytest.raises(ConfigError) as info:
        await m.start()
    assert info.value.setting == "UPSTASH_REDIS_REST_TOKEN" and "nope" not in str(info.value)
    await m.aclose()
    m = memory(tmp_path, upstash.url, [], vector_token="nope", ns="other")
    with pytest.raises(ConfigError) as info:
        await m.start()
    assert info.value.setting == "UPSTASH_VECTOR_REST_TOKEN"
    await m.aclose()


def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for k in list(os.environ):
        if k.startswith(("INFERGUARD_", "UPSTASH_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("INFERGUARD_STATE_DIR", str(tmp_path / "state"))


async def test_v6_setting_names_and_any_combination(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    upstash: UpstashDouble) -> None:
    _clean(monkeypatch, tmp_path)
    monkeypatch.setenv("UPSTASH_VECTOR_URL", upstash.url)
    monkeypatch.setenv("UPSTASH_VECTOR_TOKEN", "vector-token")
    settings = Settings.load()
    shown = settings.redacted()
    assert shown["memory_backends"]["state"].startswith("sqlite")
    assert shown["memory_backends"]["recall"].startswith("upstash vector")
    assert "vector-token" not in str(shown)
    m = open_memory(settings.memory)
    await m.start()
    try:
        assert m.backends == {"state": "sqlite", "recall": "upstash-vector"}
        for d in story("http://a/metrics", T0, KV):
            await m.record(d)
        assert (await m.recall("KV cache"))[0]["target"] == "http://a/metrics"
        assert len(upstash.vectors) == 1
    finally:
        await m.aclose()
    monkeypatch.setenv("UPSTASH_REDIS_URL", upstash.url)
    monkeypatch.setenv("INFERGUARD_MEMORY_RECALL", "sqlite")
    settings = Settings.load()
    assert settings.memory.state_backend() == "upstash" and settings.memory.recall_backend() == "sqlite"
    with pytest.raises(ConfigError) as info:
        open_memory(settings.memory)  # a URL without its token
    assert info.value.setting == "UPSTASH_REDIS_REST_TOKEN"


@pytest.mark.skipif(not (os.environ.get("UPSTASH_REDIS_REST_URL") and os.environ.get("UPSTASH_VECTOR_REST_URL")
                         and os.environ.get("INFERGUARD_TEST_REAL_UPSTASH") == "1"),
                    reason="opt-in: set INFERGUARD_TEST_REAL_UPSTASH=1 and real UPSTASH_* credentials")
async def test_against_a_real_upstash_account(tmp_path: Path) -> None:
    ns = f"inferguard-test-{uuid.uuid4().hex[:8]}"
    m = memory(tmp_path, os.environ["UPSTASH_REDIS_REST_URL"], [], token=os.environ["UPSTASH_REDIS_REST_TOKEN"],
               vector_token=os.environ["UPSTASH_VECTOR_REST_TOKEN"], ns=ns)
    m.vector = VectorRecall(os.environ["UPSTASH_VECTOR_REST_URL"], os.environ["UPSTASH_VECTOR_REST_TOKEN"],
                            namespace=ns, timeout_s=10)
    m._remotes = [m.state, m.vector]  # type: ignore[list-item]
    await m.start()
    docs = story("http://a/metrics", T0, KV)
    try:
        for d in docs:
            await m.record(d)
        assert (await m.state.get(docs[0]["incident"]["id"]) or {}).get("status") == "resolved"  # type: ignore[union-attr]
        assert await m.settle(30)
    finally:
        if m.vector is not None:
            await m.vector.forget([docs[0]["incident"]["id"]])
        keys = await m.state.commands.run("KEYS", f"{ns}:*")  # type: ignore[union-attr]
        if keys:
            await m.state.commands.run("DEL", *keys)  # type: ignore[union-attr]
        await m.aclose()


async def test_retention_reaches_upstash_redis_and_vector(tmp_path: Path, upstash: UpstashDouble) -> None:
    """Retention in the embedded store is passed on: Upstash Redis drops the old resolved incident and
    Upstash Vector forgets it, through the real SDKs; the recent one stays in both."""
    now = [T0 + 100]
    state = RemoteState(UpstashCommands(upstash.url, "test-token", timeout_s=1.0), retention_days=1)
    vector = VectorRecall(upstash.url, "vector-token", timeout_s=1.0)
    m = Memory(SqliteStore(tmp_path / "m.db", retention_days=1, clock=lambda: now[0]), state=state, vector=vector,
               retry_min_s=0.05, retry_max_s=0.2)
    old = story("http://old/metrics", T0, KV)
    try:
        for d in old:
            await m.record(d)
        old_id = old[0]["incident"]["id"]
        assert await vector.fetch(old_id) is not None
        now[0] = T0 + 2 * 86400
        fresh = story("http://new/metrics", now[0], QUEUE)
        for d in fresh:
            await m.record(d)  # this write's batch runs retention
        assert await m.settle(30), m.degraded
        assert await vector.fetch(old_id) is None and await state.get(old_id) is None
        new_id = fresh[0]["incident"]["id"]
        assert await vector.fetch(new_id) is not None and await state.get(new_id) is not None
    finally:
        await m.aclose()
