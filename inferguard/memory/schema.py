"""The embedded store's schema, as numbered migrations. ``PRAGMA user_version`` says how far a file is.

Append a migration to change the schema; never edit one that has shipped. A file from a newer
InferGuard (a higher version than this list knows) is refused, never downgraded or reset.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: incidents (full JSON + what recall needs), their events, signal windows, state, the spool.
    """
    CREATE TABLE incidents (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        target TEXT, engine TEXT, model TEXT, status TEXT, severity TEXT,
        opened_at REAL, updated_at REAL, resolved_at REAL,
        doc TEXT NOT NULL,
        peak TEXT NOT NULL DEFAULT '{}',
        fp BLOB, fp_seq INTEGER NOT NULL DEFAULT 0,
        outcome TEXT
    );
    CREATE INDEX incidents_by_target ON incidents(target, opened_at);
    CREATE INDEX incidents_by_opened ON incidents(opened_at);
    CREATE INDEX incidents_by_status ON incidents(status, updated_at);
    CREATE INDEX incidents_by_fp_seq ON incidents(fp_seq);
    CREATE VIRTUAL TABLE incidents_fts USING fts5(text, tokenize = 'unicode61');
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        incident_id TEXT NOT NULL,
        event TEXT NOT NULL,
        ts REAL NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX events_by_incident ON events(incident_id, seq);
    CREATE TABLE windows (incident_id TEXT PRIMARY KEY, samples TEXT NOT NULL);
    CREATE TABLE state (key TEXT PRIMARY KEY, doc TEXT NOT NULL, saved_at REAL NOT NULL);
    CREATE TABLE spool (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        backend TEXT NOT NULL,
        op TEXT NOT NULL,
        doc TEXT NOT NULL,
        queued_at REAL NOT NULL
    );
    CREATE INDEX spool_by_backend ON spool(backend, seq);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta VALUES ('fp_seq', 0), ('deletions', 0);
    """,
)

MIGRATIONS += (
    # 2: text recall indexes each distinct incident text once (signature_text), not every incident:
    # BM25 then scores thousands of texts instead of every matching incident. The per-incident FTS
    # table goes; ``texts_fts`` is filled for existing incidents by the store on open (``tid IS NULL``).
    """
    CREATE TABLE texts (tid INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE);
    CREATE VIRTUAL TABLE texts_fts USING fts5(text, tokenize = 'unicode61');
    ALTER TABLE incidents ADD COLUMN tid INTEGER;
    CREATE INDEX incidents_by_tid ON incidents(tid, opened_at);
    DROP TABLE incidents_fts;
    """,
)

MIGRATIONS += (
    # 3: stored fingerprints say which layout they were computed with (``fp_layout``, a checksum of
    # inferguard.memory.docs' codes, engines and levels). Vectors from another layout (v2 files were
    # written before ``metrics_dropped`` joined the codes: one dimension fewer, every engine and level
    # shifted) are re-computed on open from each incident's stored document and peak levels. Padding
    # would be wrong: the new code sits between the old codes and the engines. The store does the
    # re-computation whenever the layout differs, so a later change of codes needs no new migration.
    """
    INSERT OR IGNORE INTO meta VALUES ('fp_layout', 0);
    """,
)

VERSION = len(MIGRATIONS)
