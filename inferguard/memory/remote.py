"""Incident memory on a Redis server (TCP or Upstash REST): the same keys, commands and Lua script.

Keys, all under ``<namespace>:`` so two fleets can share one server:
``inc:<id>`` hash (doc, outcome, updated_at, status, target) · ``incidents`` and ``tgt:<target>`` sorted
sets by opening time · ``open`` set · ``tl:<id>`` list of the incident's events · ``events`` capped
stream · ``ek:<key>`` idempotency marks (expire with retention) · ``win:<id>`` signal window ·
``state:<key>`` restart state. ``record`` is one Lua script: atomic and idempotent per event key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from inferguard.jsonsafe import compact
from inferguard.memory.commands import Commands
from inferguard.memory.docs import check_event, event_row, merge_window

RECORD = """
local ns, key, id, row, doc = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local updated, opened, status, target = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9]
if not redis.call('SET', ns .. ':ek:' .. key, '1', 'NX', 'EX', tonumber(ARGV[11])) then return 0 end
redis.call('XADD', ns .. ':events', 'MAXLEN', '~', ARGV[10], '*', 'key', key, 'incident', id, 'doc', row)
redis.call('RPUSH', ns .. ':tl:' .. id, row)
local ik = ns .. ':inc:' .. id
local cur = tonumber(redis.call('HGET', ik, 'updated_at'))
if cur == nil or updated >= cur then
  redis.call('HSET', ik, 'doc', doc, 'updated_at', ARGV[6], 'status', status, 'target', target)
  redis.call('ZADD', ns .. ':incidents', opened, id)
  redis.call('ZADD', ns .. ':tgt:' .. target, opened, id)
  if status == 'open' then redis.call('SADD', ns .. ':open', id) else redis.call('SREM', ns .. ':open', id) end
end
return 1
"""


class RemoteState:
    """Incidents, events, windows and restart state on a Redis server. Raises MemoryBackendError or
    ConfigError (bad credentials); the composite store spools and degrades around it."""

    def __init__(self, commands: Commands, *, namespace: str = "inferguard", retention_days: float = 90.0,
                 max_incidents: int = 100_000, max_events: int = 500_000, window_cap: int = 120) -> None:
        self.commands = commands
        self.name = commands.name
        self.ns = namespace
        self.retention_s = retention_days * 86400.0
        self.max_incidents = max_incidents
        self.max_events = max_events
        self.window_cap = window_cap

    def _k(self, *parts: str) -> str:
        return ":".join((self.ns, *parts))

    async def ping(self) -> None:
        await self.commands.run("PING")

    async def apply(self, op: str, doc: Mapping[str, Any]) -> None:
        """One spooled write: ``record`` (an event), ``save`` ({key, doc}), ``note`` ({id, outcome}) or
        ``prune`` ({now, ids}: retention ran in the embedded store)."""
        if op == "record":
            await self.record(doc)
        elif op == "save":
            await self.save(str(doc["key"]), doc["doc"])
        elif op == "note":
            await self.note_outcome(str(doc["id"]), doc["outcome"])
        elif op == "prune":
            await self.prune(float(doc["now"]), [str(i) for i in doc.get("ids") or []])
        else:
            raise ValueError(f"unknown spooled operation {op!r}")

    async def record(self, event: Mapping[str, Any]) -> bool:
        _, inc = check_event(event)
        row = event_row(event)
        updated = inc.get("updated_at") or row["ts"]
        added = await self.commands.run(
            "EVAL", RECORD, 0, self.ns, row["key"], inc["id"], compact(row), compact(inc), repr(float(updated)),
            repr(float(inc.get("opened_at") or row["ts"])), str(inc.get("status") or "open"),
            str(inc.get("target") or ""), str(self.max_events), str(max(60, int(self.retention_s))))
        window = event.get("window")
        # Merged even when the event was already there: a replayed spool must still bring its window
        # (merge_window keeps one sample per ts, so a second merge changes nothing).
        if isinstance(window, list) and window:
            key = self._k("win", inc["id"])
            old = await self.commands.run("GET", key)
            merged = merge_window(json.loads(old) if old else [], window, self.window_cap)
            await self.commands.run("SET", key, compact(merged))
        return bool(added)

    async def save(self, key: str, doc: Mapping[str, Any]) -> None:
        await self.commands.run("SET", self._k("state", key), compact(dict(doc)))

    async def load(self, key: str) -> dict[str, Any] | None:
        raw = await self.commands.run("GET", self._k("state", key))
        return None if raw is None else dict(json.loads(raw))

    async def note_outcome(self, incident_id: str, outcome: Mapping[str, Any]) -> bool:
        key = self._k("inc", incident_id)
        if not await self.commands.run("EXISTS", key):
            return False
        await self.commands.run("HSET", key, "outcome", compact(dict(outcome)))
        return True

    async def _docs(self, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        rows = await self.commands.batch([["HMGET", self._k("inc", i), "doc", "outcome"] for i in ids])
        out = []
        for row in rows:
            if row and row[0]:
                doc = dict(json.loads(row[0]))
                doc["outcome"] = json.loads(row[1]) if row[1] else None
                out.append(doc)
        return out

    async def get(self, incident_id: str) -> dict[str, Any] | None:
        found = await self._docs([incident_id])
        if not found:
            return None
        doc = found[0]
        timeline, window = await self.commands.batch([["LRANGE", self._k("tl", incident_id), 0, -1],
                                                      ["GET", self._k("win", incident_id)]])
        doc["timeline"] = [json.loads(r) for r in timeline or []]
        doc["window"] = json.loads(window) if window else []
        return doc

    async def list_incidents(self, *, open_only: bool = False, target: str | None = None,
                             since: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if open_only:
            ids = sorted(await self.commands.run("SMEMBERS", self._k("open")) or [])
        else:
            zkey = self._k("tgt", target) if target is not None else self._k("incidents")
            ids = list(await self.commands.run("ZRANGE", zkey, 0, max(1, limit) * 4 - 1, "REV") or [])
        docs = await self._docs(ids)
        docs = [d for d in docs if (target is None or d.get("target") == target)
                and (since is None or (d.get("resolved_at") or d.get("updated_at") or 0) >= since)]
        docs.sort(key=lambda d: (d.get("opened_at") or 0), reverse=True)
        return docs[:limit]

    async def events(self, *, after: str = "-", limit: int = 1000) -> list[dict[str, Any]]:
        """The capped event stream, oldest first, each with its stream ``id``."""
        start = after if after == "-" else f"({after}"
        entries = await self.commands.run("XRANGE", self._k("events"), start, "+", "COUNT", max(1, limit))
        out = []
        for entry_id, fields in entries or []:
            # redis-py parses the fields into a dict; the REST protocol gives the flat list.
            pairs = fields if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2], strict=True))
            out.append(json.loads(pairs["doc"]) | {"id": entry_id})
        return out

    async def open_ids(self) -> list[str]:
        return sorted(await self.commands.run("SMEMBERS", self._k("open")) or [])

    async def count(self) -> dict[str, int]:
        n_inc, n_ev, n_open = await self.commands.batch([["ZCARD", self._k("incidents")],
                                                         ["XLEN", self._k("events")], ["SCARD", self._k("open")]])
        return {"incidents": int(n_inc), "events": int(n_ev), "open": int(n_open)}

    async def prune(self, now: float, ids: list[str] | tuple[str, ...] = ()) -> int:
        """Retention, as the embedded store applies it: resolved incidents not updated within the age
        limit, or past the count limit (oldest first), go with their timeline and window; so do ``ids``
        (what the embedded store just dropped). Open incidents never go. The event stream is capped by
        XADD MAXLEN and the idempotency marks expire on their own. Idempotent: a replayed spool is fine."""
        cutoff = now - self.retention_s
        # Opened before the cutoff: the only ones that can have been last updated before it.
        aged = list(await self.commands.run("ZRANGE", self._k("incidents"), "-inf", f"({cutoff}", "BYSCORE") or [])
        total = int(await self.commands.run("ZCARD", self._k("incidents")))
        capped: set[str] = set(ids)
        if total - len(aged) > self.max_incidents:
            capped.update(await self.commands.run("ZRANGE", self._k("incidents"), 0,
                                                  total - self.max_incidents - 1) or [])
        open_ = set(await self.open_ids())
        gone = 0
        for iid in dict.fromkeys([*aged, *sorted(capped)]):
            if iid in open_:
                continue
            target, updated, status = await self.commands.run("HMGET", self._k("inc", iid), "target",
                                                              "updated_at", "status")
            if status == "open" or (iid not in capped and updated is not None and float(updated) >= cutoff):
                continue  # resolved within the age limit: kept
            await self.commands.batch([["DEL", self._k("inc", iid), self._k("tl", iid), self._k("win", iid)],
                                       ["ZREM", self._k("incidents"), iid],
                                       ["ZREM", self._k("tgt", str(target or "")), iid]])
            gone += 0 if target is None and status is None else 1  # an id never stored here is no loss
        return gone

    async def aclose(self) -> None:
        await self.commands.aclose()
