"""The notification sink: policy → outbox → channels (Slack, webhook, Alertmanager), with its state in a
StateStore so a restart neither loses nor repeats a notification.

``send`` takes every incident event (the Sink protocol); ``tick`` runs the clock-driven part (sustained
severity changes, repeats, the end of a silence, Alertmanager re-sends, retries): whoever runs it calls
``tick`` regularly (``inferguard replay --notify`` does after every scrape, on the recorded clock).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio

from inferguard.errors import SinkError
from inferguard.protocols import EventDoc, StateStore
from inferguard.sinks.outbox import Outbox, RateLimiter, backoff
from inferguard.sinks.policy import Notice, NotifyPolicy, PolicyConfig
from inferguard.sinks.silences import load_silences, silenced_by

STATE_KEY = "notify.state"
log = logging.getLogger("inferguard.notify")


class Channel(Protocol):
    """One receiver. ``deliver`` raises SinkError on failure; ``memo`` is its own persisted dict (e.g. the
    Slack thread of each incident). ``resend_every`` (seconds) asks for the state of every open incident
    again and again (Alertmanager expires alerts that are not re-sent); None for notification channels."""

    name: str
    resend_every: float | None

    async def deliver(self, notice: Notice, memo: dict[str, Any]) -> None: ...

    async def aclose(self) -> None: ...


class Notifier:
    name = "notify"

    def __init__(self, channels: list[Channel], store: StateStore, *, policy: PolicyConfig | None = None,
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random,
                 rate_per_minute: int = 20, max_backoff_s: float = 300.0, timeout_s: float = 30.0) -> None:
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate channel names: {names}")
        self.channels = {c.name: c for c in channels}
        self.store = store
        self.clock = clock
        self.rand = rand
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.policy = NotifyPolicy(policy)
        self.outbox = Outbox()
        self.memos: dict[str, dict[str, Any]] = {c: {} for c in self.channels}
        self.limits = {c: RateLimiter(rate_per_minute) for c in self.channels}
        self.counts = {"delivered": 0, "failed_attempts": 0, "dropped": 0}
        self._silences: list[dict[str, Any]] = []
        self._loaded = False
        self._lock = anyio.Lock()

    # -- the Sink protocol ---------------------------------------------------------------------
    async def send(self, event: EventDoc) -> None:
        async with self._lock:
            await self._load()
            now = self.clock()
            self._silences = await load_silences(self.store)
            self._enqueue(self.policy.on_event(event, now, self._silenced), now)
            await self._save()
            await self._flush(now)

    async def tick(self) -> None:
        async with self._lock:
            await self._load()
            now = self.clock()
            self._silences = await load_silences(self.store)
            self._enqueue(self.policy.due(now, self._silenced), now)
            self._resend(now)
            await self._save()
            await self._flush(now)

    async def aclose(self) -> None:
        for c in self.channels.values():
            await c.aclose()

    def pending(self) -> list[dict[str, Any]]:
        """What waits in the outbox (for the API and `inferguard check`): channel, key, attempts, error."""
        return [{"channel": e["channel"], "key": e["notice"]["key"], "kind": e["notice"]["kind"],
                 "attempts": e["attempts"], "next_at": e["next_at"], "last_error": e["last_error"]}
                for e in self.outbox.ordered()]

    # -- internals -----------------------------------------------------------------------------
    def _silenced(self, inc: Mapping[str, Any]) -> bool:
        return bool(silenced_by(self._silences, inc, self.clock()))

    def _enqueue(self, notices: list[Notice], now: float) -> None:
        for notice in notices:
            for name in self.channels:
                self.outbox.add(name, notice, now)
        for entry in self.outbox.dropped:
            self.counts["dropped"] += 1
            log.error("notify.dropped channel=%s key=%s reason=outbox full", entry["channel"], entry["notice"]["key"])
        self.outbox.dropped.clear()

    def _resend(self, now: float) -> None:
        for name, ch in self.channels.items():
            if ch.resend_every is None:
                continue
            sent = self.memos[name].setdefault("sent_at", {})
            for st in self.policy.open_incidents():
                last = sent.get(st["id"])
                if last is not None and now - float(last) >= ch.resend_every:
                    doc = dict(st["doc"], severity=st["severity"] or st["doc"].get("severity"))
                    self.outbox.add(name, {"key": f"{st['id']}:refresh:{now}", "kind": "refresh", "incident": doc,
                                           "at": now}, now)

    async def _flush(self, now: float) -> None:
        blocked: set[str] = set()  # a sink that failed or is rate limited waits until the next pass
        for entry in list(self.outbox.ordered()):
            name = entry["channel"]
            ch = self.channels.get(name)
            if ch is None:
                self.outbox.remove(entry)
                self.counts["dropped"] += 1
                log.error("notify.dropped channel=%s key=%s reason=sink no longer configured", name,
                          entry["notice"]["key"])
                continue
            if name in blocked or float(entry["next_at"]) > now:
                blocked.add(name)  # keep each sink's order: nothing overtakes a waiting entry
                continue
            wait = self.limits[name].take(now)
            if wait > 0:
                entry["next_at"] = now + wait
                blocked.add(name)
                continue
            try:
                with anyio.fail_after(self.timeout_s):
                    await ch.deliver(entry["notice"], self.memos[name])
            except (SinkError, TimeoutError) as exc:
                entry["attempts"] += 1
                entry["last_error"] = str(exc)[:300] or type(exc).__name__
                entry["next_at"] = now + backoff(entry["attempts"], cap=self.max_backoff_s, rand=self.rand)
                self.counts["failed_attempts"] += 1
                blocked.add(name)
                log.warning("notify.retry channel=%s key=%s attempts=%d next_in=%.1fs error=%s", name,
                            entry["notice"]["key"], entry["attempts"], entry["next_at"] - now, entry["last_error"])
            else:
                self.outbox.remove(entry)
                self.counts["delivered"] += 1
                self.memos[name].setdefault("sent_at", {})[entry["notice"]["incident"].get("id")] = now
                if entry["notice"]["kind"] == "resolved":
                    self.memos[name]["sent_at"].pop(entry["notice"]["incident"].get("id"), None)
            await self._save()

    async def _load(self) -> None:
        if self._loaded:
            return
        doc = await self.store.load(STATE_KEY) or {}
        self.policy = NotifyPolicy(self.policy.config, doc.get("incidents"))
        box = doc.get("outbox") or {}
        self.outbox = Outbox(box.get("entries"), int(box.get("seq", 0)))
        for name, memo in (doc.get("memos") or {}).items():
            if name in self.memos:
                self.memos[name] = dict(memo)
        self._loaded = True

    async def _save(self) -> None:
        await self.store.save(STATE_KEY, {"version": 1, "incidents": self.policy.state(),
                                          "outbox": self.outbox.state(), "memos": self.memos})
