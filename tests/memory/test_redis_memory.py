"""Incident memory on a real redis-server: exactly-once through outages, spool replay in order,
degraded reads, credentials refused by name, namespaces kept apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferguard.config import Settings
from inferguard.errors import ConfigError
from inferguard.incidents import IncidentBook
from inferguard.memory.commands import RedisCommands
from inferguard.memory.remote import RemoteState
from inferguard.memory.sqlite import SqliteStore
from inferguard.memory.store import Memory
from tests.memory.docs import KV, QUEUE, TTFT, finding, story
from tests.memory.redis_server import RedisServer

pytestmark = pytest.mark.redis
T0 = 990_000.0


def memory(tmp_path: Path, url: str, logs: list[tuple[str, dict[str, Any]]], ns: str = "inferguard",
           local: str = "local.db") -> Memory:
    state = RemoteState(RedisCommands(url, timeout_s=0.5), namespace=ns)
    return Memory(SqliteStore(tmp_path / local), state=state, retry_min_s=0.05, retry_max_s=0.2,
                  log=lambda event, **kw: logs.append((event, kw)))


async def stream(m: Memory) -> list[dict[str, Any]]:
    assert m.state is not None
    return await m.state.events()


async def test_records_and_reads_back_from_redis_exactly_once(tmp_path: Path, redis_server: RedisServer) -> None:
    logs: list[tuple[str, dict[str, Any]]] = []
    m = memory(tmp_path, redis_server.url, logs)
    await m.start()
    try:
        docs = story("http://a/metrics", T0, KV, QUEUE)
        for d in docs + docs:
            await m.record(d)
        inc_id = docs[0]["incident"]["id"]
        got = await m.get(inc_id)
        assert got is not None and got["status"] == "resolved" and len(got["timeline"]) == 3
        assert [e["event"] for e in await stream(m)] == ["incident.opened", "incident.updated", "incident.resolved"]
        assert [i["id"] for i in await m.list_incidents(target="http://a/metrics")] == [inc_id]
        await m.save("baselines", {"x": 1})
        assert await m.state.load("baselines") == {"x": 1}  # type: ignore[union-attr]
        assert await m.load("baselines") == {"x": 1}
        assert logs == []
    finally:
        await m.aclose()


async def test_two_namespaces_share_one_server(tmp_path: Path, redis_server: RedisServer) -> None:
    logs: list[tuple[str, dict[str, Any]]] = []
    a = memory(tmp_path, redis_server.url, logs, ns="fleet-a", local="a.db")
    b = memory(tmp_path, redis_server.url, logs, ns="fleet-b", local="b.db")
    await a.start()
    await b.start()
    try:
        for d in story("http://a/metrics", T0, KV):
            await a.record(d)
        assert await b.list_incidents() == [] and len(await a.list_incidents()) == 1
        keys = await a.state.commands.run("KEYS", "*")  # type: ignore[union-attr]
        assert keys and all(k.startswith("fleet-a:") for k in keys)
    finally:
        await a.aclose()
        await b.aclose()


async def test_an_outage_spools_locally_and_replays_in_order_exactly_once(
        tmp_path: Path, redis_server: RedisServer) -> None:
    logs: list[tuple[str, dict[str, Any]]] = []
    m = memory(tmp_path, redis_server.url, logs)
    await m.start()
    book = IncidentBook(resolve_after=1)
    stories = [story(f"http://t{i}/metrics", T0 + i * 100, spec, book=book)
               for i, spec in enumerate((KV, QUEUE, TTFT, KV, QUEUE, TTFT))]
    try:
        for d in stories[0]:
            await m.record(d)
        redis_server.kill()  # mid-run, without warning
        for s in stories[1:4]:
            for d in s:
                await m.record(d)  # never raises: spooled
        await m.save("open", {"ids": ["x"]})
        assert m.degraded and any(e == "memory.degraded" for e, _ in logs)
        assert (await m.stats())["spooled"]["redis"] > 0
        # Reads degrade to the embedded store, which has everything.
        assert len(await m.list_incidents()) == 4
        assert await m.load("open") == {"ids": ["x"]}
        redis_server.start()  # same port, same AOF: what was acknowledged before the kill is still there
        for s in stories[4:]:
            for d in s:
                await m.record(d)
        assert await m.settle(30), m.degraded
        got = await stream(m)
        want = [(d["incident"]["id"], d["event"]) for s in stories for d in s]
        assert [(e["incident_id"], e["event"]) for e in got] == want  # every event, once, in order
        assert len(await m.list_incidents()) == 6
        assert await m.state.load("open") == {"ids": ["x"]}  # type: ignore[union-attr]
        assert any(e == "memory.recovered" for e, _ in logs) and not m.degraded
    finally:
        await m.aclose()


async def test_spool_survives_a_restart_of_inferguard_too(tmp_path: Path, redis_server: RedisServer) -> None:
    logs: list[tuple[str, dict[str, Any]]] = []
    m = memory(tmp_path, redis_server.url, logs)
    await m.start()
    redis_server.kill()
    docs = story("http://a/metrics", T0, KV)
    for d in docs:
        await m.record(d)
    await m.aclose()  # InferGuard stops with the spool non-empty
    redis_server.start()
    m = memory(tmp_path, redis_server.url, logs)
    await m.start()  # finds the spool and replays it
    try:
        assert await m.settle(30)
        assert len(await stream(m)) == len(docs)
    finally:
        await m.aclose()


async def test_a_wrong_password_is_refused_at_start_by_name(tmp_path: Path) -> None:
    from tests.memory.redis_server import REDIS

    if REDIS is None:
        pytest.skip("redis-server is not installed (scripts/test_deps.sh installs it)")
    server = RedisServer(tmp_path / "redis", password="right-password")
    server.start()
    try:
        url = server.url.replace("right-password", "wrong-password")
        m = memory(tmp_path, url, [])
        with pytest.raises(ConfigError) as info:
            await m.start()
        assert info.value.setting == "INFERGUARD_REDIS_URL" and "wrong-password" not in str(info.value)
        await m.aclose()
        m = memory(tmp_path, url.replace(":wrong-password@", ""), [], local="b.db")
        with pytest.raises(ConfigError, match="password"):
            await m.start()
        await m.aclose()
    finally:
        server.stop()


def test_a_malformed_redis_url_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INFERGUARD_REDIS_URL", "http://user:s3cret@host:6379")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert info.value.setting == "INFERGUARD_REDIS_URL" and "s3cret" not in str(info.value)


async def test_retention_on_redis_keeps_open_incidents(tmp_path: Path, redis_server: RedisServer) -> None:
    state = RemoteState(RedisCommands(redis_server.url), retention_days=1, max_incidents=2)
    try:
        book = IncidentBook(resolve_after=1)
        for i in range(4):
            for d in story(f"http://r{i}/metrics", T0 + i, QUEUE, book=book):
                await state.record(d)
        for d in story("http://open/metrics", T0 - 10 * 86400, KV)[:1]:
            await state.record(d)
        assert await state.prune(now=T0 + 100) == 2
        assert (await state.count())["incidents"] == 3
        assert await state.prune(now=T0 + 3 * 86400) == 2
        assert [i["target"] for i in await state.list_incidents()] == ["http://open/metrics"]
    finally:
        await state.aclose()


async def test_retention_in_the_embedded_store_reaches_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    """The daemon's memory as build.py opens it (settings, one retention): once the embedded store's
    retention drops an old resolved incident, Redis drops it too, with its timeline and window; open
    and recent incidents stay."""
    from inferguard.config import MemorySettings
    from inferguard.memory.build import open_memory

    now = [T0 + 100]
    settings = MemorySettings(state_dir=tmp_path / "state", redis_url=redis_server.url,  # type: ignore[arg-type]
                              memory_retention_days=1)
    m = open_memory(settings, clock=lambda: now[0])
    assert m.state is not None
    book = IncidentBook(resolve_after=1)
    old = story("http://old/metrics", T0, KV, book=book)  # resolved at T0 + 60
    kept_open = story("http://open/metrics", T0, QUEUE)[:1]
    late = IncidentBook(resolve_after=1)  # opened at T0 too, resolved only 1.5 days later: recent
    kw: dict[str, Any] = {"engine": "vllm-v1", "model": "llama-3-8b"}
    first = [finding("http://slow/metrics", T0, TTFT)]
    slow = [e.to_dict() for e in late.update("http://slow/metrics", T0, first, **kw)]
    slow += [e.to_dict() for e in late.update("http://slow/metrics", T0 + 1.5 * 86400, [], **kw)]
    try:
        for d in old + kept_open + slow:
            await m.record(d)
        old_id, open_id = old[0]["incident"]["id"], kept_open[0]["incident"]["id"]
        assert await m.state.commands.run("EXISTS", f"inferguard:inc:{old_id}") == 1
        now[0] = T0 + 2 * 86400  # a day past retention; the next write's batch runs it
        fresh = story("http://new/metrics", now[0], TTFT, book=book)
        for d in fresh:
            await m.record(d)
        assert await m.settle(30), m.degraded
        assert await m.local.get(old_id) is None  # the embedded store dropped it...
        keys = await m.state.commands.run("KEYS", f"inferguard:*{old_id}*")
        assert keys == []  # ...and so did Redis: inc:, tl:, win: all gone
        assert old_id not in await m.state.commands.run("ZRANGE", "inferguard:incidents", 0, -1)
        assert sorted(i["target"] for i in await m.state.list_incidents()) == [
            "http://new/metrics", "http://open/metrics", "http://slow/metrics"]
        assert sorted(i["target"] for i in await m.local.list_incidents()) == [
            "http://new/metrics", "http://open/metrics", "http://slow/metrics"]  # the same rule, both sides
        assert await m.state.get(open_id) is not None
    finally:
        await m.aclose()


async def test_retention_reaches_redis_through_the_spool_after_an_outage(
        tmp_path: Path, redis_server: RedisServer) -> None:
    logs: list[tuple[str, dict[str, Any]]] = []
    now = [T0 + 100]
    state = RemoteState(RedisCommands(redis_server.url, timeout_s=0.5), retention_days=1)
    m = Memory(SqliteStore(tmp_path / "local.db", retention_days=1, clock=lambda: now[0]), state=state,
               retry_min_s=0.05, retry_max_s=0.2, log=lambda event, **kw: logs.append((event, kw)))
    old = story("http://old/metrics", T0, KV)
    try:
        for d in old:
            await m.record(d)
        redis_server.kill()
        now[0] = T0 + 2 * 86400
        assert (await m.prune())["incidents"] == 1  # Redis is down: the prune waits in the spool
        assert (await m.stats())["spooled"]["redis"] >= 1
        redis_server.start()
        assert await m.settle(30), m.degraded
        assert await state.get(old[0]["incident"]["id"]) is None and (await state.count())["incidents"] == 0
    finally:
        await m.aclose()


async def test_a_retention_pass_refused_by_redis_is_logged_never_fatal(
        tmp_path: Path, redis_server: RedisServer) -> None:
    import redis

    logs: list[tuple[str, dict[str, Any]]] = []
    now = [T0 + 100]
    m = Memory(SqliteStore(tmp_path / "local.db", retention_days=1, clock=lambda: now[0]),
               state=RemoteState(RedisCommands(redis_server.url, timeout_s=0.5), retention_days=1),
               retry_min_s=0.05, retry_max_s=0.2, log=lambda event, **kw: logs.append((event, kw)))
    try:
        for d in story("http://old/metrics", T0, KV):
            await m.record(d)
        now[0] = T0 + 2 * 86400
        await m.record(story("http://new/metrics", now[0], QUEUE)[0])  # runs retention; its pass is queued
        # Before the event loop runs that pass, Redis starts wanting a password (synchronous client:
        # nothing of ours runs in between).
        admin = redis.Redis(host="127.0.0.1", port=redis_server.port)
        admin.config_set("requirepass", "now-a-password")
        admin.close()
        # Our pooled connection was authenticated before; a fresh one (as after any reconnect) is not.
        pool = m.state.commands._client.connection_pool  # type: ignore[union-attr]
        stale = [*pool._available_connections, *pool._in_use_connections]
        pool.reset()
        await m.settle(5)
        for conn in stale:
            await conn.disconnect()
        assert [e for e, _ in logs if e == "memory.prune_failed"] == ["memory.prune_failed"], logs
        assert "now-a-password" not in str(logs)
        assert await m.local.get(story("http://old/metrics", T0, KV)[0]["incident"]["id"]) is None
    finally:
        await m.aclose()
