"""The embedded store against a real SQLite file in a temporary folder."""

from __future__ import annotations

import json
import sqlite3
from array import array
from pathlib import Path

import pytest

from inferguard.errors import MemoryBackendError
from inferguard.incidents import IncidentBook
from inferguard.memory import SqliteStore, schema
from inferguard.protocols import IncidentStore, StateStore
from tests.memory.docs import DOWN, KV, QUEUE, TTFT, story

T0 = 990_000.0


async def record_all(store: SqliteStore, docs: list[dict]) -> None:
    for d in docs:
        await store.record(d)


async def test_satisfies_both_protocols(store: SqliteStore) -> None:
    assert isinstance(store, IncidentStore) and isinstance(store, StateStore)


async def test_records_an_incident_with_its_timeline_and_is_idempotent(store: SqliteStore) -> None:
    docs = story("http://a/metrics", T0, KV, QUEUE)
    await record_all(store, docs)
    await record_all(store, docs)  # a replayed spool: nothing doubles
    inc_id = docs[0]["incident"]["id"]
    got = await store.get(inc_id)
    assert got is not None
    assert [e["event"] for e in got["timeline"]] == ["incident.opened", "incident.updated", "incident.resolved"]
    assert got["status"] == "resolved" and got["codes"] == ["kv_pressure", "queue_buildup"]
    assert got["diagnosis"]["root_cause"] == "kv_pressure" and got["diagnoses"][0]["source"] == "rules"
    assert (await store.stats())["events"] == 3
    assert await store.get("inc-nope") is None


async def test_open_incidents_are_listed_until_resolved(store: SqliteStore) -> None:
    docs = story("http://a/metrics", T0, KV)
    await store.record(docs[0])
    assert [i["id"] for i in await store.list_incidents(open_only=True)] == [docs[0]["incident"]["id"]]
    await record_all(store, docs[1:])
    assert await store.list_incidents(open_only=True) == []
    assert len(await store.list_incidents(target="http://a/metrics")) == 1
    assert await store.list_incidents(target="http://b/metrics") == []
    assert len(await store.list_incidents(since=T0 + 30)) == 1  # resolved at T0+60
    assert await store.list_incidents(since=T0 + 61) == []


async def test_an_older_state_arriving_late_does_not_overwrite_a_newer_one(store: SqliteStore) -> None:
    docs = story("http://a/metrics", T0, KV)
    await store.record(docs[-1])  # resolved first
    await store.record(docs[0])   # then the stale "opened"
    got = await store.get(docs[0]["incident"]["id"])
    assert got is not None and got["status"] == "resolved"
    assert len(got["timeline"]) == 2


async def test_text_recall_ranks_by_bm25_and_filters(store: SqliteStore) -> None:
    book = IncidentBook(resolve_after=1)
    await record_all(store, story("http://a/metrics", T0, KV, book=book))
    await record_all(store, story("http://b/metrics", T0 + 1000, QUEUE, book=book))
    await record_all(store, story("http://c/metrics", T0 + 2000, TTFT, engine="sglang", book=book))
    hits = await store.recall("KV cache full, preempted")
    assert hits[0]["target"] == "http://a/metrics" and hits[0]["score"] > 0
    assert "kv_pressure" in hits[0]["codes"]
    assert [h["target"] for h in await store.recall("waiting batch slot")][:1] == ["http://b/metrics"]
    assert await store.recall("KV cache", target="http://b/metrics") == []
    assert [h["target"] for h in await store.recall("TTFT baseline", engine="sglang")] == ["http://c/metrics"]
    assert await store.recall("TTFT baseline", engine="vllm-v1") == []
    # Quotes, operators and punctuation are words to FTS, never query syntax.
    assert isinstance(await store.recall('kv" OR NOT (AND * ^'), list)
    assert len(await store.recall("")) == 3  # no query: the most recent


async def test_similarity_recall_by_fingerprint_excludes_the_incident_itself(store: SqliteStore) -> None:
    book = IncidentBook(resolve_after=1)
    kv1 = story("http://a/metrics", T0, KV, book=book)
    kv2 = story("http://b/metrics", T0 + 10, KV, QUEUE, book=book)
    q = story("http://c/metrics", T0 + 20, QUEUE, book=book)
    down = story("http://d/metrics", T0 + 30, DOWN, book=book)
    for docs in (kv1, kv2, q, down):
        await record_all(store, docs)
    probe = kv1[-1]["incident"]
    hits = await store.recall(incident=probe, limit=3)
    assert next(h["target"] for h in hits) == "http://b/metrics"
    assert probe["id"] not in [h["id"] for h in hits]
    assert hits[0]["score"] > hits[-1]["score"]
    assert [h["target"] for h in await store.recall(incident=probe, target="http://c/metrics")] == ["http://c/metrics"]
    # A new incident recorded after the first query is seen by the next one (the index refreshes).
    kv3 = story("http://e/metrics", T0 + 40, KV, book=book)
    await record_all(store, kv3)
    assert (await store.recall(incident=probe, limit=1))[0]["target"] == "http://e/metrics"


async def test_state_round_trips_and_unknown_key_is_none(store: SqliteStore) -> None:
    await store.save("baselines", {"a": {"ttft_p95_s": 0.2, "n": 40}})
    assert await store.load("baselines") == {"a": {"ttft_p95_s": 0.2, "n": 40}}
    await store.save("baselines", {"b": 1})
    assert await store.load("baselines") == {"b": 1}
    assert await store.load("never") is None
    with pytest.raises(MemoryBackendError, match="state key"):
        await store.save("", {})


async def test_a_restart_forgets_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    s = SqliteStore(path)
    docs = story("http://a/metrics", T0, KV)
    await record_all(s, docs[:2])
    await s.save("open", {"ids": [docs[0]["incident"]["id"]]})
    await s.note(docs[0]["incident"]["id"], worked=True, note="raised gpu-memory-utilization")
    await s.aclose()
    s = SqliteStore(path)
    try:
        assert (await s.load("open")) == {"ids": [docs[0]["incident"]["id"]]}
        (inc,) = await s.list_incidents(open_only=True)
        assert inc["outcome"]["worked"] is True
        assert (await s.recall("gpu memory utilization"))[0]["id"] == inc["id"]  # the note is searchable
        assert s.schema_version == schema.VERSION
    finally:
        await s.aclose()


async def test_outcome_note(store: SqliteStore) -> None:
    docs = story("http://a/metrics", T0, KV)
    await record_all(store, docs)
    assert await store.note(docs[0]["incident"]["id"], worked=False, note="did not help") is True
    assert await store.note("inc-unknown", worked=True) is False
    got = await store.get(docs[0]["incident"]["id"])
    assert got is not None and got["outcome"]["worked"] is False and got["outcome"]["note"] == "did not help"
    # A later event keeps the operator's note.
    await store.record({**docs[-1], "changes": ["again"]})
    got = await store.get(docs[0]["incident"]["id"])
    assert got is not None and got["outcome"]["worked"] is False


async def test_a_malformed_event_is_refused_by_name_and_the_store_goes_on(store: SqliteStore) -> None:
    with pytest.raises(MemoryBackendError, match="event kind"):
        await store.record({"event": "incident.exploded", "incident": {"id": "x"}})
    with pytest.raises(MemoryBackendError, match="incident with an id"):
        await store.record({"event": "incident.opened", "incident": {}})
    docs = story("http://a/metrics", T0, KV)
    await record_all(store, docs)
    assert (await store.stats())["incidents"] == 1


async def test_signal_window_is_kept_around_the_incident_and_capped(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "m.db", window_cap=10)
    try:
        docs = story("http://a/metrics", T0, KV)
        w1 = [{"ts": T0 - 10 + i, "values": {"kv_usage": 0.5 + i / 100}} for i in range(8)]
        w2 = [{"ts": T0 - 4 + i, "values": {"kv_usage": 0.9}} for i in range(8)]
        await s.record({**docs[0], "window": w1})
        await s.record({**docs[-1], "window": w2})
        got = await s.get(docs[0]["incident"]["id"])
        assert got is not None
        ts = [x["ts"] for x in got["window"]]
        assert len(ts) == 10 and ts == sorted(ts)
        assert ts[:5] == [T0 - 10 + i for i in range(5)]  # the run-up is kept
        assert ts[-1] == T0 + 3  # and the latest
    finally:
        await s.aclose()


async def test_retention_by_age_and_count_never_drops_open_incidents(tmp_path: Path) -> None:
    now = [T0]
    s = SqliteStore(tmp_path / "m.db", retention_days=1, max_incidents=3, max_events=5, clock=lambda: now[0])
    try:
        book = IncidentBook(resolve_after=1)
        for i in range(4):
            await record_all(s, story(f"http://r{i}/metrics", T0 + i * 100, QUEUE, book=book))
        open_docs = story("http://open/metrics", T0 - 5 * 86400, KV)[:1]  # old, but still open
        await record_all(s, open_docs)
        gone = await s.prune()
        stats = await s.stats()
        assert stats["incidents"] == 3 and gone["incidents"] == 2
        assert stats["events"] <= 5
        assert [i["id"] for i in await s.list_incidents(open_only=True)] == [open_docs[0]["incident"]["id"]]
        now[0] = T0 + 2 * 86400  # everything resolved is now past one day
        await s.prune()
        assert (await s.stats())["incidents"] == 1
        assert (await s.recall(incident=open_docs[0]["incident"])) == []  # the index forgot them too
    finally:
        await s.aclose()


async def test_spool_keeps_order_until_acknowledged(store: SqliteStore) -> None:
    for i in range(5):
        await store.spool("redis", "record", {"n": i})
    await store.spool("upstash", "record", {"n": 99})
    got = await store.spooled("redis", limit=3)
    assert [d["n"] for _, _, d in got] == [0, 1, 2]
    await store.unspool("redis", got[-1][0])
    assert [d["n"] for _, _, d in await store.spooled("redis")] == [3, 4]
    assert await store.spool_size("upstash") == 1


def test_a_corrupt_file_is_a_clear_error_and_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "inferguard.db"
    path.write_bytes(b"this is not a database" * 200)
    before = path.read_bytes()
    with pytest.raises(MemoryBackendError, match=r"unreadable.*move it aside"):
        SqliteStore(path)
    assert path.read_bytes() == before


def test_a_locked_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "inferguard.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE x(a)")
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(MemoryBackendError, match="locked by another process"):
            SqliteStore(path, lock_timeout_s=0.1)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_newer_schema_or_a_foreign_file_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    c = sqlite3.connect(newer)
    c.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    c.close()
    with pytest.raises(MemoryBackendError, match="newer than this"):
        SqliteStore(newer)
    foreign = tmp_path / "foreign.db"
    c = sqlite3.connect(foreign)
    c.execute("CREATE TABLE photos(x)")
    c.commit()
    c.close()
    with pytest.raises(MemoryBackendError, match="not InferGuard's"):
        SqliteStore(foreign)


def test_an_unwritable_state_dir_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MemoryBackendError, match="INFERGUARD_STATE_DIR"):
        SqliteStore(blocker / "sub" / "inferguard.db")


async def test_a_version_1_file_is_migrated_and_its_incidents_stay_searchable(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    c = sqlite3.connect(path, isolation_level=None)
    for statement in schema.MIGRATIONS[0].split(";"):
        if statement.strip():
            c.execute(statement)
    c.execute("PRAGMA user_version = 1")
    doc = story("http://a/metrics", T0, KV)[-1]["incident"]
    c.execute("INSERT INTO incidents(id, target, engine, status, opened_at, updated_at, doc) VALUES (?,?,?,?,?,?,?)",
              (doc["id"], doc["target"], doc["engine"], doc["status"], doc["opened_at"], doc["updated_at"],
               json.dumps(doc)))
    c.close()
    s = SqliteStore(path)
    try:
        assert s.schema_version == schema.VERSION >= 2
        assert [h["id"] for h in await s.recall("KV cache preempted")] == [doc["id"]]
    finally:
        await s.aclose()


async def test_a_store_written_with_the_shorter_fingerprint_recalls_correctly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written before ``metrics_dropped`` joined the anomaly codes hold vectors one dimension
    shorter, with every engine and level one place earlier. Opening one re-computes them (migration 3)."""
    from inferguard.memory import docs as fpdocs
    from inferguard.models import ANOMALY_CODES

    path = tmp_path / "v2.db"
    book = IncidentBook(resolve_after=1)
    kv = story("http://a/metrics", T0, KV, book=book)
    q = story("http://c/metrics", T0 + 20, QUEUE, book=book)
    s = SqliteStore(path, clock=lambda: T0 + 1000)
    await record_all(s, kv + q)
    await s.aclose()
    # Rewrite the file as the previous InferGuard left it: schema 2, vectors in the old layout.
    with monkeypatch.context() as old:
        old.setattr(fpdocs, "ANOMALY_CODES", tuple(c for c in ANOMALY_CODES if c != "metrics_dropped"))
        c = sqlite3.connect(path, isolation_level=None)
        for rowid, doc, peak in c.execute("SELECT rowid, doc, peak FROM incidents").fetchall():
            vec = fpdocs.fingerprint_vector(json.loads(doc), json.loads(peak))
            assert len(vec) == fpdocs.DIMENSIONS - 1
            c.execute("UPDATE incidents SET fp = ? WHERE rowid = ?", (array("f", vec).tobytes(), rowid))
        c.execute("DELETE FROM meta WHERE key = 'fp_layout'")
        c.execute("PRAGMA user_version = 2")
        c.close()
    s = SqliteStore(path, clock=lambda: T0 + 1000)
    try:
        assert s.schema_version == schema.VERSION >= 3
        probe = story("http://z/metrics", T0 + 99, KV, book=IncidentBook(resolve_after=1))[-1]["incident"]
        hits = await s.recall(incident=probe, limit=2)
        # Re-computed, not padded: the same codes and engine match exactly (a padded old vector would
        # put the engine on another dimension and score lower).
        assert [h["target"] for h in hits] == ["http://a/metrics", "http://c/metrics"]
        assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5) and hits[1]["score"] < 0.9
        kv2 = story("http://b/metrics", T0 + 40, KV, QUEUE, book=book)
        await record_all(s, kv2)  # written after the migration, found beside the migrated ones
        assert {h["target"] for h in await s.recall(incident=probe, limit=3)} == {
            "http://a/metrics", "http://b/metrics", "http://c/metrics"}
    finally:
        await s.aclose()


async def test_json_work_happens_on_the_writer_thread_not_the_event_loop(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Serialising a burst of incidents costs tens of microseconds each: the writer thread pays it,
    the event loop (the scrape cycles) only validates and queues."""
    import threading

    from inferguard.memory import sqlite as sqlite_module

    threads: list[str] = []
    real = sqlite_module.compact

    def spy(obj: object) -> str:
        threads.append(threading.current_thread().name)
        return real(obj)

    monkeypatch.setattr(sqlite_module, "compact", spy)
    await record_all(store, story("http://a/metrics", T0, KV, QUEUE))
    await store.save("baselines", {"a": 1})
    await store.note(story("http://a/metrics", T0, KV, QUEUE)[0]["incident"]["id"], worked=True)
    assert threads and set(threads) == {"inferguard-sqlite-writer"}
