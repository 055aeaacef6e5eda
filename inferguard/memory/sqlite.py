"""The embedded incident memory: one SQLite file (WAL), written by one thread in batches.

The event loop never touches the file: writes are queued to a writer thread that applies whatever
has queued up in one transaction (one fsync for many events), and reads run in worker threads on a
connection of their own. Text recall is FTS5 (BM25) over the incident's text; similarity recall is
cosine over a numeric fingerprint (:mod:`inferguard.memory.fpindex`). A file that is corrupt, locked
or from a newer InferGuard is a :class:`MemoryBackendError` naming the file, never a silent reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import queue
import sqlite3
import threading
import time
from array import array
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio.to_thread

from inferguard.errors import MemoryBackendError
from inferguard.jsonsafe import compact
from inferguard.memory import schema
from inferguard.memory.docs import (
    FINGERPRINT_LAYOUT,
    check_event,
    event_row,
    fingerprint_vector,
    merge_window,
    peak_levels,
    query_terms,
    signature_text,
    summary,
)
from inferguard.memory.fpindex import FingerprintIndex

_Done = Callable[[BaseException | None, Any], None]
_STOP = object()
DB_NAME = "inferguard.db"


class SqliteStore:
    """IncidentStore + StateStore + the read API (``get``, ``list_incidents``, ``timeline``) on SQLite."""

    name = "sqlite"

    def __init__(self, path: str | Path, *, retention_days: float = 90.0, max_incidents: int = 100_000,
                 max_events: int = 500_000, window_cap: int = 120, lock_timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time, batch: int = 512) -> None:
        self.path = Path(path)
        self.retention_s = retention_days * 86400.0
        self.max_incidents = max_incidents
        self.max_events = max_events
        self.window_cap = window_cap
        self.clock = clock
        self._batch = batch
        self._closed = False
        self._wconn = self._connect(lock_timeout_s)
        self._tids: dict[str, int] = {}  # text hash → tid, the writer's memo
        try:
            self._migrate()
            self._rconn = self._connect(lock_timeout_s)
        except BaseException:
            self._wconn.close()
            raise
        self._fp_seq = int(self._wconn.execute("SELECT coalesce(max(fp_seq), 0) FROM incidents").fetchone()[0])
        self._rlock = threading.Lock()
        self._index = FingerprintIndex()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._since_prune = 0
        self._last_prune = 0.0
        # What retention removed, for the remote backends to forget too (Memory.forward_prunes): the
        # time of the latest run and the ids it dropped, handed over from the writer thread under a lock.
        self._pruned_lock = threading.Lock()
        self._pruned: tuple[float, list[str]] | None = None
        self._pruning: tuple[float, list[str]] | None = None  # this transaction's, writer thread only
        self.report_pruned = False  # set by Memory when remote backends need to hear of it
        self.writes = 0
        self._writer = threading.Thread(target=self._write_loop, name="inferguard-sqlite-writer", daemon=True)
        self._writer.start()

    # -- opening -------------------------------------------------------------------------------
    def _connect(self, lock_timeout_s: float) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise MemoryBackendError(f"INFERGUARD_STATE_DIR: cannot create {self.path.parent}: "
                                     f"{exc.strerror or exc}") from None
        try:
            conn = sqlite3.connect(self.path, timeout=lock_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise MemoryBackendError(f"cannot open incident memory {self.path}: {exc}") from None
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise MemoryBackendError(f"{self.path}: cannot switch to WAL (journal_mode={mode})")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise self._explain(exc) from None
        return conn

    def _explain(self, exc: sqlite3.Error) -> MemoryBackendError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return MemoryBackendError(f"incident memory {self.path} is locked by another process "
                                      f"(another inferguard on the same INFERGUARD_STATE_DIR?): {text}")
        if type(exc) is sqlite3.DatabaseError:  # "file is not a database", "malformed": corruption
            return MemoryBackendError(f"incident memory {self.path} is unreadable ({text}); it was left "
                                      "untouched: move it aside to start with an empty memory")
        return MemoryBackendError(f"incident memory {self.path}: {text}")

    def _migrate(self) -> None:
        c = self._wconn
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                version = int(c.execute("PRAGMA user_version").fetchone()[0])
                if version > schema.VERSION:
                    raise MemoryBackendError(
                        f"incident memory {self.path} has schema version {version}, newer than this "
                        f"InferGuard knows ({schema.VERSION}); upgrade InferGuard or point "
                        "INFERGUARD_STATE_DIR elsewhere")
                if version == 0 and c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise MemoryBackendError(f"{self.path} is an SQLite file but not InferGuard's incident memory; "
                                             "it was left untouched")
                for number in range(version, schema.VERSION):
                    for statement in schema.MIGRATIONS[number].split(";"):
                        if statement.strip():
                            c.execute(statement)
                    c.execute(f"PRAGMA user_version = {number + 1}")
                for rowid, doc, outcome in c.execute(
                        "SELECT rowid, doc, outcome FROM incidents WHERE tid IS NULL").fetchall():
                    text = signature_text({**json.loads(doc), "outcome": json.loads(outcome) if outcome else None})
                    c.execute("UPDATE incidents SET tid = ? WHERE rowid = ?", (self._tid(c, text), rowid))
                self._refingerprint(c)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._explain(exc) from None

    @staticmethod
    def _refingerprint(c: sqlite3.Connection) -> None:
        """Vectors computed with another fingerprint layout are re-computed from the stored incident and
        its peak levels (one pass, inside the opening transaction); each gets a new ``fp_seq`` and the
        deletion generation moves, so any index built from the old vectors is rebuilt."""
        row = c.execute("SELECT value FROM meta WHERE key = 'fp_layout'").fetchone()
        if row is not None and int(row[0]) == FINGERPRINT_LAYOUT:
            return
        seq = int(c.execute("SELECT coalesce(max(fp_seq), 0) FROM incidents").fetchone()[0])
        for rowid, doc, peak in c.execute("SELECT rowid, doc, peak FROM incidents").fetchall():
            seq += 1
            vec = fingerprint_vector(json.loads(doc), json.loads(peak or "{}"))
            c.execute("UPDATE incidents SET fp = ?, fp_seq = ? WHERE rowid = ?",
                      (array("f", vec).tobytes(), seq, rowid))
        c.execute("UPDATE meta SET value = value + 1 WHERE key = 'deletions'")
        c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('fp_layout', ?)", (FINGERPRINT_LAYOUT,))

    @property
    def schema_version(self) -> int:
        return int(self._rconn.execute("PRAGMA user_version").fetchone()[0])

    # -- the writer thread ---------------------------------------------------------------------
    def _write_loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < self._batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._apply(batch)
        with contextlib.suppress(sqlite3.Error):
            self._wconn.execute("PRAGMA optimize")

    def _apply(self, batch: list[tuple[Callable[..., Any], tuple[Any, ...], _Done | None]]) -> None:
        c = self._wconn
        outcomes: list[tuple[BaseException | None, Any]] = []
        self._pruning = None
        try:
            c.execute("BEGIN IMMEDIATE")
            for fn, args, _ in batch:
                c.execute("SAVEPOINT op")
                try:
                    outcomes.append((None, fn(c, *args)))
                    c.execute("RELEASE op")
                except (ValueError, TypeError) as exc:
                    c.execute("ROLLBACK TO op")
                    c.execute("RELEASE op")
                    outcomes.append((MemoryBackendError(f"rejected: {exc}"), None))
            self._since_prune += len(batch)
            now = self.clock()
            if self._since_prune >= 2000 or now - self._last_prune >= 60.0:
                self._prune(c, now)
            c.execute("COMMIT")
            self.writes += len(batch)
            if self._pruning is not None and self.report_pruned:
                with self._pruned_lock:
                    ids = self._pruned[1] if self._pruned is not None else []
                    self._pruned = (self._pruning[0], ids + self._pruning[1])
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
            failed: BaseException = self._explain(exc)
            outcomes = [(failed, None)] * len(batch)
        for (_, _, done), (err, result) in zip(batch, outcomes, strict=True):
            if done is not None:
                done(err, result)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        if self._closed:
            raise MemoryBackendError(f"incident memory {self.path} is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def settle(err: BaseException | None, result: Any) -> None:
            if not fut.done():
                if err is not None:
                    fut.set_exception(err)
                else:
                    fut.set_result(result)

        def done(err: BaseException | None, result: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
                loop.call_soon_threadsafe(settle, err, result)

        self._queue.put((fn, args, done))
        return fut

    # -- writes (run on the writer thread) -----------------------------------------------------
    def _w_record(self, c: sqlite3.Connection, event: Mapping[str, Any]) -> bool:
        _, inc = check_event(event)
        row = event_row(event)
        cur = c.execute("INSERT OR IGNORE INTO events(key, incident_id, event, ts, doc) VALUES (?,?,?,?,?)",
                        (row["key"], row["incident_id"], row["event"], row["ts"], compact(row)))
        if cur.rowcount == 0:
            return False  # already recorded (a replayed spool, a retried write)
        self._upsert(c, inc)
        window = event.get("window")
        if isinstance(window, list) and window:
            old = c.execute("SELECT samples FROM windows WHERE incident_id = ?", (inc["id"],)).fetchone()
            merged = merge_window(json.loads(old[0]) if old else [], window, self.window_cap)
            c.execute("INSERT OR REPLACE INTO windows(incident_id, samples) VALUES (?, ?)",
                      (inc["id"], compact(merged)))
        return True

    def _upsert(self, c: sqlite3.Connection, inc: Mapping[str, Any]) -> None:
        old = c.execute("SELECT rowid, updated_at, peak, outcome FROM incidents WHERE id = ?", (inc["id"],)).fetchone()
        updated = inc.get("updated_at")
        if old is not None and old[1] is not None and isinstance(updated, int | float) and updated < old[1]:
            return  # an older state arriving late never overwrites a newer one
        peak = peak_levels(inc, json.loads(old[2]) if old else None)
        vec = fingerprint_vector(inc, peak)
        self._fp_seq += 1
        blob = array("f", vec).tobytes()
        outcome = json.loads(old[3]) if old and old[3] else None
        values = (inc.get("target"), inc.get("engine"), inc.get("model"), inc.get("status"),
                  inc.get("peak_severity") or inc.get("severity"), inc.get("opened_at"), updated,
                  inc.get("resolved_at"), compact(inc), compact(peak), blob, self._fp_seq)
        tid = self._tid(c, signature_text({**inc, "outcome": outcome}))
        if old is None:
            c.execute("INSERT INTO incidents(target, engine, model, status, severity, opened_at, updated_at, "
                      "resolved_at, doc, peak, fp, fp_seq, tid, id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      (*values, tid, inc["id"]))
        else:
            c.execute("UPDATE incidents SET target=?, engine=?, model=?, status=?, severity=?, opened_at=?, "
                      "updated_at=?, resolved_at=?, doc=?, peak=?, fp=?, fp_seq=?, tid=? WHERE rowid=?",
                      (*values, tid, old[0]))

    def _tid(self, c: sqlite3.Connection, text: str) -> int:
        """The id of this incident text in the text index, adding it the first time it is seen."""
        key = hashlib.sha1(text.encode()).hexdigest()
        tid = self._tids.get(key)
        if tid is None:
            row = c.execute("SELECT tid FROM texts WHERE hash = ?", (key,)).fetchone()
            if row is None:
                tid = int(c.execute("INSERT INTO texts(hash) VALUES (?)", (key,)).lastrowid or 0)
                c.execute("INSERT INTO texts_fts(rowid, text) VALUES (?, ?)", (tid, text))
            else:
                tid = int(row[0])
            if len(self._tids) > 50_000:
                self._tids.clear()
            self._tids[key] = tid
        return tid

    def _w_note(self, c: sqlite3.Connection, incident_id: str, outcome: dict[str, Any]) -> bool:
        row = c.execute("SELECT rowid, doc FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            return False
        tid = self._tid(c, signature_text({**json.loads(row[1]), "outcome": outcome}))
        c.execute("UPDATE incidents SET outcome = ?, tid = ? WHERE rowid = ?", (compact(outcome), tid, row[0]))
        return True

    def _w_save(self, c: sqlite3.Connection, key: str, doc: Mapping[str, Any]) -> None:
        c.execute("INSERT OR REPLACE INTO state(key, doc, saved_at) VALUES (?, ?, ?)",
                  (key, compact(dict(doc)), self.clock()))

    def _w_spool(self, c: sqlite3.Connection, backend: str, op: str, doc: Mapping[str, Any]) -> int:
        cur = c.execute("INSERT INTO spool(backend, op, doc, queued_at) VALUES (?, ?, ?, ?)",
                        (backend, op, compact(dict(doc)), self.clock()))
        return int(cur.lastrowid or 0)

    def _w_unspool(self, c: sqlite3.Connection, backend: str, upto: int) -> None:
        c.execute("DELETE FROM spool WHERE backend = ? AND seq <= ?", (backend, upto))

    def _w_noop(self, c: sqlite3.Connection) -> None:
        return None

    def _w_prune(self, c: sqlite3.Connection) -> dict[str, int]:
        return self._prune(c, self.clock())

    def _prune(self, c: sqlite3.Connection, now: float) -> dict[str, int]:
        """Retention: resolved incidents older than the age limit or past the count cap go, with their
        events and windows; open incidents are never dropped. The event stream is capped on its own."""
        self._since_prune, self._last_prune = 0, now
        doomed = [r[0] for r in c.execute(
            "SELECT id FROM incidents WHERE status != 'open' AND updated_at < ?", (now - self.retention_s,))]
        total = int(c.execute("SELECT count(*) FROM incidents").fetchone()[0]) - len(doomed)
        if total > self.max_incidents:
            gone = set(doomed)
            for (iid,) in c.execute("SELECT id FROM incidents WHERE status != 'open' ORDER BY updated_at, rowid "
                                    "LIMIT ?", (total - self.max_incidents + len(doomed),)):
                if iid not in gone and total > self.max_incidents:
                    doomed.append(iid)
                    total -= 1
        for iid in doomed:
            c.execute("DELETE FROM incidents WHERE id = ?", (iid,))
            c.execute("DELETE FROM events WHERE incident_id = ?", (iid,))
            c.execute("DELETE FROM windows WHERE incident_id = ?", (iid,))
        if doomed:
            c.execute("UPDATE meta SET value = value + 1 WHERE key = 'deletions'")
            orphans = [r[0] for r in c.execute("SELECT tid FROM texts WHERE NOT EXISTS "
                                               "(SELECT 1 FROM incidents WHERE incidents.tid = texts.tid)")]
            for tid in orphans:
                c.execute("DELETE FROM texts_fts WHERE rowid = ?", (tid,))
                c.execute("DELETE FROM texts WHERE tid = ?", (tid,))
            self._tids.clear()
        last = c.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        cur = c.execute("DELETE FROM events WHERE seq <= ?", (last - self.max_events,))
        self._pruning = (now, doomed)  # handed over once the transaction commits
        return {"incidents": len(doomed), "events": max(0, cur.rowcount)}

    @property
    def pruned_waiting(self) -> bool:
        """Retention ran since the last :meth:`take_pruned` (a cheap check for every write)."""
        return self._pruned is not None

    def take_pruned(self) -> tuple[float, list[str]] | None:
        """The time retention last ran and the incident ids it dropped (committed) since the last call,
        or None."""
        with self._pruned_lock:
            got, self._pruned = self._pruned, None
        return got

    # -- the protocols -------------------------------------------------------------------------
    async def record(self, event: Mapping[str, Any]) -> None:
        """Remember one lifecycle event (and the incident's latest state). Idempotent. An optional
        ``window`` key (a list of ``{"ts", "values"}`` samples) is kept as the signals around it."""
        try:
            check_event(event)
        except ValueError as exc:
            raise MemoryBackendError(f"event rejected: {exc}") from None
        await self._submit(self._w_record, event)

    async def save(self, key: str, doc: Mapping[str, Any]) -> None:
        if not isinstance(key, str) or not key or len(key) > 200:
            raise MemoryBackendError(f"state key must be a non-empty string of at most 200 characters, got {key!r}")
        await self._submit(self._w_save, key, doc)

    async def load(self, key: str) -> dict[str, Any] | None:
        row = await self._read(lambda c: c.execute("SELECT doc FROM state WHERE key = ?", (key,)).fetchone())
        return None if row is None else dict(json.loads(row[0]))

    async def note(self, incident_id: str, *, worked: bool, note: str = "", source: str = "operator") -> bool:
        """Remember whether the fix worked. False when no such incident is stored."""
        return bool(await self._submit(self._w_note, incident_id, self.outcome(worked, note, source)))

    def outcome(self, worked: bool, note: str = "", source: str = "operator") -> dict[str, Any]:
        """The outcome document ``note`` stores (the remote backends store the same)."""
        return {"worked": bool(worked), "note": note[:2000], "source": source, "at": self.clock()}

    async def flush(self) -> None:
        """Wait until everything queued before this call is committed."""
        await self._submit(self._w_noop)

    async def prune(self) -> dict[str, int]:
        """Apply retention now (it also runs every 2,000 writes or minute); counts what went."""
        return dict(await self._submit(self._w_prune))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        await anyio.to_thread.run_sync(self._writer.join)
        with self._rlock:
            self._rconn.close()
        self._wconn.close()

    # -- the spool (remote backends park writes here while they are down) ------------------------
    async def spool(self, backend: str, op: str, doc: Mapping[str, Any]) -> int:
        return int(await self._submit(self._w_spool, backend, op, doc))

    async def spooled(self, backend: str, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        rows = await self._read(lambda c: c.execute(
            "SELECT seq, op, doc FROM spool WHERE backend = ? ORDER BY seq LIMIT ?", (backend, limit)).fetchall())
        return [(int(s), str(op), json.loads(d)) for s, op, d in rows]

    async def unspool(self, backend: str, upto: int) -> None:
        await self._submit(self._w_unspool, backend, upto)

    async def spool_size(self, backend: str) -> int:
        row = await self._read(lambda c: c.execute("SELECT count(*) FROM spool WHERE backend = ?",
                                                   (backend,)).fetchone())
        return int(row[0])

    # -- reads (worker threads, own connection) ------------------------------------------------
    async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise MemoryBackendError(f"incident memory {self.path} is closed")
        return await anyio.to_thread.run_sync(self._read_sync, fn)

    def _read_sync(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._rlock:
            try:
                return fn(self._rconn)
            except sqlite3.Error as exc:
                raise self._explain(exc) from None

    async def recall(self, query: str = "", *, incident: Mapping[str, Any] | None = None, target: str | None = None,
                     engine: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        limit = max(1, min(int(limit), 100))
        return list(await self._read(lambda c: self.recall_sync(c, query, incident, target, engine, limit)))

    def recall_sync(self, c: sqlite3.Connection, query: str, incident: Mapping[str, Any] | None,
                    target: str | None, engine: str | None, limit: int) -> list[dict[str, Any]]:
        if incident is not None:
            return self._similar(c, incident, target, engine, limit)
        terms = query_terms(query)
        where, params = _filters(target, engine)
        if not terms:
            rows = c.execute(f"SELECT doc, outcome, NULL FROM incidents {where and 'WHERE ' + where} "
                             "ORDER BY opened_at DESC LIMIT ?", (*params, limit)).fetchall()
        else:
            rows = self._text_hits(c, " OR ".join(f'"{t}"' for t in terms), where, params, limit)
        return [summary(_doc(d, o), s) for d, o, s in rows]

    @staticmethod
    def _text_hits(c: sqlite3.Connection, match: str, where: str, params: list[Any],
                   limit: int) -> list[tuple[str, str | None, float]]:
        """BM25 over the distinct incident texts (the best 256), then the incidents that read so:
        best text first, newest incident first within one text."""
        texts = c.execute("SELECT rowid, -rank FROM texts_fts WHERE texts_fts MATCH ? ORDER BY rank LIMIT 256",
                          (match,)).fetchall()
        if not texts:
            return []
        scores: dict[int, float] = dict(texts)
        if not where:
            out: list[tuple[str, str | None, float]] = []
            for tid, score in texts:
                rows = c.execute("SELECT doc, outcome FROM incidents WHERE tid = ? ORDER BY opened_at DESC LIMIT ?",
                                 (tid, limit - len(out))).fetchall()
                out += [(d, o, score) for d, o in rows]
                if len(out) >= limit:
                    break
            return out
        # A filter (one target, one engine) narrows the incidents to hundreds: rank those in one query.
        marks = ",".join("?" * len(scores))
        found = c.execute(f"SELECT rowid, tid, opened_at FROM incidents WHERE {where} AND tid IN ({marks})",
                          (*params, *scores)).fetchall()
        found.sort(key=lambda r: (-scores[r[1]], -(r[2] or 0.0)))
        top = found[:limit]
        docs = {r: (d, o) for r, d, o in c.execute(
            f"SELECT rowid, doc, outcome FROM incidents WHERE rowid IN ({','.join('?' * len(top))})",
            [r for r, _, _ in top])} if top else {}
        return [(*docs[r], scores[t]) for r, t, _ in top if r in docs]

    def _similar(self, c: sqlite3.Connection, incident: Mapping[str, Any], target: str | None,
                 engine: str | None, limit: int) -> list[dict[str, Any]]:
        generation = int(c.execute("SELECT value FROM meta WHERE key = 'deletions'").fetchone()[0])
        if generation != self._index.generation:
            self._index.reset(generation)
        self._index.update(c.execute("SELECT rowid, fp_seq, fp, target, engine FROM incidents "
                                     "WHERE fp_seq > ? AND fp IS NOT NULL ORDER BY fp_seq", (self._index.seq,)))
        own = c.execute("SELECT rowid, peak FROM incidents WHERE id = ?", (incident.get("id"),)).fetchone()
        peak = peak_levels(incident, json.loads(own[1]) if own else None)
        hits = self._index.nearest(fingerprint_vector(incident, peak), limit, target=target, engine=engine,
                                   exclude=own[0] if own else None)
        if not hits:
            return []
        marks = ",".join("?" * len(hits))
        docs = {r: (d, o) for r, d, o in c.execute(
            f"SELECT rowid, doc, outcome FROM incidents WHERE rowid IN ({marks})", [r for r, _ in hits])}
        return [summary(_doc(*docs[r]), s) for r, s in hits if r in docs]

    async def get(self, incident_id: str) -> dict[str, Any] | None:
        """The incident as last recorded, with ``outcome``, its ``timeline`` of lifecycle events and the
        ``window`` of signals around it; None when unknown."""
        def read(c: sqlite3.Connection) -> dict[str, Any] | None:
            row = c.execute("SELECT doc, outcome FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                return None
            doc = _doc(*row)
            doc["timeline"] = [json.loads(d) | {"seq": s} for s, d in c.execute(
                "SELECT seq, doc FROM events WHERE incident_id = ? ORDER BY seq", (incident_id,))]
            w = c.execute("SELECT samples FROM windows WHERE incident_id = ?", (incident_id,)).fetchone()
            doc["window"] = json.loads(w[0]) if w else []
            return doc
        result: dict[str, Any] | None = await self._read(read)
        return result

    async def list_incidents(self, *, open_only: bool = False, target: str | None = None,
                             since: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Incidents, newest first (by opening time)."""
        where, params = _filters(target, None)
        clauses = [w for w in (where, "status = 'open'" if open_only else "",
                               "coalesce(resolved_at, updated_at) >= ?" if since is not None else "") if w]
        if since is not None:
            params.append(since)
        sql = (f"SELECT doc, outcome FROM incidents {'WHERE ' + ' AND '.join(clauses) if clauses else ''} "
               "ORDER BY opened_at DESC, rowid DESC LIMIT ?")
        rows = await self._read(lambda c: c.execute(sql, (*params, max(1, limit))).fetchall())
        return [_doc(d, o) for d, o in rows]

    async def events(self, *, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The event stream, oldest first, from sequence number ``after`` (exclusive)."""
        rows = await self._read(lambda c: c.execute(
            "SELECT seq, doc FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, max(1, limit))).fetchall())
        return [json.loads(d) | {"seq": s} for s, d in rows]

    async def stats(self) -> dict[str, Any]:
        def read(c: sqlite3.Connection) -> dict[str, Any]:
            n = {t: int(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                 for t in ("incidents", "events", "windows", "state", "spool")}
            n["open"] = int(c.execute("SELECT count(*) FROM incidents WHERE status = 'open'").fetchone()[0])
            return n
        out: dict[str, Any] = await self._read(read)
        out["bytes"] = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        out["path"] = str(self.path)
        return out


def _filters(target: str | None, engine: str | None, prefix: str = "") -> tuple[str, list[Any]]:
    clauses, params = [], []
    if target is not None:
        clauses.append(f"{prefix}target = ?")
        params.append(target)
    if engine is not None:
        clauses.append(f"{prefix}engine = ?")
        params.append(engine)
    return " AND ".join(clauses), params


def _doc(doc: str, outcome: str | None) -> dict[str, Any]:
    out = dict(json.loads(doc))
    out["outcome"] = json.loads(outcome) if outcome else None
    return out
