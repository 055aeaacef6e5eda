"""The incident memory the daemon uses: the embedded store always, plus remote state and/or vector recall.

Every write lands in the embedded store first (it is fast, local and the fallback for every read).
A remote backend (Redis, Upstash Redis, Upstash Vector) gets the same write next; when it is down,
slow or refusing, the write is spooled in the embedded store and a background task replays the spool
in order when the backend answers again (the backends are idempotent per event, so a write that was
in fact applied before a timeout is not duplicated). While a backend has a spool, new writes queue
behind it, so order is kept. Reads go to the backend that serves them and fall back to the embedded
store with a logged reason when it fails — the watch loop never stops for memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from inferguard.errors import ConfigError, MemoryBackendError
from inferguard.memory.remote import RemoteState
from inferguard.memory.sqlite import SqliteStore
from inferguard.memory.vector import VectorRecall

T = TypeVar("T")
_log = logging.getLogger("inferguard.memory")


class _Remote(Protocol):
    name: str

    async def apply(self, op: str, doc: Mapping[str, Any]) -> None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class Memory:
    """IncidentStore + StateStore + the read API, over the embedded store and optional remotes."""

    def __init__(self, local: SqliteStore, *, state: RemoteState | None = None, vector: VectorRecall | None = None,
                 retry_min_s: float = 0.5, retry_max_s: float = 30.0,
                 log: Callable[..., None] | None = None) -> None:
        self.local = local
        self.state = state
        self.vector = vector
        self._remotes: list[_Remote] = [r for r in (state, vector) if r is not None]
        # Retention runs in the embedded store's writer; the remotes are told what it dropped.
        local.report_pruned = bool(self._remotes)
        self._forwarding: asyncio.Task[None] | None = None
        self._pending: dict[str, int] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self.retry_min_s, self.retry_max_s = retry_min_s, retry_max_s
        self.degraded: dict[str, str] = {}
        # Reads a remote should have answered and the embedded store answered instead, with the reason.
        self.fallbacks: dict[str, str] = {}
        self._closing = False
        self._started = False
        self.replayed: dict[str, int] = {}
        self._log = log or (lambda event, **kw: _log.warning("%s %s", event, kw))

    @property
    def spooled(self) -> dict[str, int]:
        """Writes waiting in the embedded store's spool, per remote backend that has any."""
        return {name: n for name, n in self._pending.items() if n}

    @property
    def backends(self) -> dict[str, str]:
        return {"state": self.state.name if self.state else "sqlite",
                "recall": self.vector.name if self.vector else "sqlite"}

    async def start(self) -> None:
        """Check each remote once: bad credentials are a ConfigError now; a backend that is merely down
        is logged and written to through the spool until it answers. Every other verb calls this
        first, so the daemon's first use (restoring state at start) is where bad credentials surface."""
        if self._started:
            return
        self._started = True
        try:
            await self._start()
        except BaseException:
            self._started = False
            raise

    async def _start(self) -> None:
        for r in self._remotes:
            self._pending[r.name] = await self.local.spool_size(r.name)
            try:
                await r.ping()
            except MemoryBackendError as exc:
                self._mark(r.name, f"unreachable at start: {exc}")
            if self._pending[r.name]:
                self._kick(r)

    def _mark(self, name: str, reason: str) -> None:
        if self.degraded.get(name) != reason:
            self._log("memory.degraded", backend=name, reason=reason[:300])
        self.degraded[name] = reason

    def _kick(self, r: _Remote) -> None:
        wake = self._wake.setdefault(r.name, asyncio.Event())
        wake.set()
        task = self._drains.get(r.name)
        if task is None or task.done():
            self._drains[r.name] = asyncio.get_running_loop().create_task(self._drain(r))

    # -- writes ----------------------------------------------------------------------------------
    async def _send(self, r: _Remote, op: str, doc: Mapping[str, Any]) -> None:
        if not self._pending.get(r.name):
            try:
                await r.apply(op, doc)
                return
            except MemoryBackendError as exc:
                self._mark(r.name, f"write failed, spooling: {exc}")
        await self.local.spool(r.name, op, doc)
        self._pending[r.name] = self._pending.get(r.name, 0) + 1
        self._kick(r)

    async def _drain(self, r: _Remote) -> None:
        delay = self.retry_min_s
        wake = self._wake[r.name]
        while self._pending.get(r.name) and not self._closing:
            batch = await self.local.spooled(r.name, limit=200)
            if not batch:
                self._pending[r.name] = 0
                break
            done = 0
            try:
                for seq, op, doc in batch:
                    await r.apply(op, doc)
                    done = seq
                    self.replayed[r.name] = self.replayed.get(r.name, 0) + 1
            except MemoryBackendError as exc:
                self._mark(r.name, f"still failing: {exc}")
            except ConfigError as exc:
                self._mark(r.name, f"refused: {exc}")
            if done:
                await self.local.unspool(r.name, done)
                self._pending[r.name] = await self.local.spool_size(r.name)
                delay = self.retry_min_s
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)
            delay = min(self.retry_max_s, delay * 2)
        if r.name in self.degraded and not self._pending.get(r.name):
            self._log("memory.recovered", backend=r.name, replayed=self.replayed.get(r.name, 0))
            del self.degraded[r.name]

    async def record(self, event: Mapping[str, Any]) -> None:
        await self.start()
        await self.local.record(event)
        for r in self._remotes:
            await self._send(r, "record", event)
        self._after_local_write()

    async def save(self, key: str, doc: Mapping[str, Any]) -> None:
        await self.start()
        await self.local.save(key, doc)
        if self.state is not None:
            await self._send(self.state, "save", {"key": key, "doc": dict(doc)})
        self._after_local_write()

    # -- retention -------------------------------------------------------------------------------
    def _after_local_write(self) -> None:
        # The embedded store applies retention every 2,000 writes or minute, on its writer thread; when
        # it has, the remotes apply it too, in a task of their own so no write waits for it.
        if self.local.pruned_waiting and not self._closing and (
                self._forwarding is None or self._forwarding.done()):
            self._forwarding = asyncio.get_running_loop().create_task(self._forward_in_background())

    async def _forward_in_background(self) -> None:
        try:
            await self.forward_prunes()
        except Exception as exc:  # e.g. credentials refused meanwhile: logged, never fatal to the daemon
            self._log("memory.prune_failed", reason=f"{type(exc).__name__}: {exc}"[:300])

    async def forward_prunes(self) -> None:
        """Tell each remote that retention ran: Redis/Upstash Redis apply the same age and count limits
        and drop the incidents the embedded store dropped; Upstash Vector forgets those. Like every
        write, a remote that is down gets it through the spool."""
        while (got := self.local.take_pruned()) is not None:
            now, ids = got
            chunks = [ids[i:i + 500] for i in range(0, len(ids), 500)] or [[]]
            for r in self._remotes:
                for chunk in chunks:
                    if chunk or r is self.state:  # the state backend also applies its own limits
                        await self._send(r, "prune", {"now": now, "ids": chunk})

    async def prune(self) -> dict[str, int]:
        """Apply retention now, in the embedded store and then in every remote backend."""
        await self.start()
        counts = await self.local.prune()
        await self.forward_prunes()
        return counts

    async def note(self, incident_id: str, *, worked: bool, note: str = "", source: str = "operator") -> bool:
        """Remember whether the fix worked, here and in the state backend. True when either knows the
        incident (the remote may hold one this embedded store never saw: another host's daemon, or
        one retention dropped here). A remote that is down gets it through the spool."""
        await self.start()
        found = await self.local.note(incident_id, worked=worked, note=note, source=source)
        state = self.state
        if state is None:
            return found
        got = await self.local.get(incident_id) if found else None
        outcome = got["outcome"] if got and got.get("outcome") else self.local.outcome(worked, note, source)
        if found:
            await self._send(state, "note", {"id": incident_id, "outcome": outcome})
            return True
        if self._pending.get(state.name):
            return False  # the remote is behind (down): it cannot be asked, and is no newer than here
        try:
            return await state.note_outcome(incident_id, outcome)
        except MemoryBackendError as exc:
            self._mark(state.name, f"note failed: {exc}")
            return False

    async def flush(self) -> None:
        await self.local.flush()

    async def settle(self, timeout_s: float = 10.0) -> bool:
        """Wait (bounded) until retention has been passed on and every spool is replayed; True when
        nothing is left spooled."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while any(self._pending.values()) or (self._forwarding is not None and not self._forwarding.done()):
                    await asyncio.sleep(0.05)
        return not any(self._pending.values())

    # -- reads -----------------------------------------------------------------------------------
    async def _read(self, remote: Any, name: str, call: Callable[[], Awaitable[T]],
                    fallback: Callable[[], Awaitable[T]]) -> T:
        # A backend with writes still spooled is behind this process: the embedded store is newer.
        if remote is None:
            return await fallback()
        if self._pending.get(remote.name):
            self.fallbacks[remote.name] = "it is behind: writes to it are still spooled here"
            return await fallback()
        try:
            return await call()
        except MemoryBackendError as exc:
            self._mark(remote.name, f"{name} read failed, answered from the embedded store: {exc}")
            self.fallbacks[remote.name] = str(exc)
            return await fallback()

    async def load(self, key: str) -> dict[str, Any] | None:
        await self.start()
        return await self._read(self.state, "state", lambda: self.state.load(key),  # type: ignore[union-attr]
                                lambda: self.local.load(key))

    async def recall(self, query: str = "", *, incident: Mapping[str, Any] | None = None, target: str | None = None,
                     engine: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        await self.start()
        def local() -> Awaitable[list[dict[str, Any]]]:
            return self.local.recall(query, incident=incident, target=target, engine=engine, limit=limit)

        if incident is not None or not query.strip() or self.vector is None:
            return await local()  # the numeric fingerprint is only in the embedded store
        vector = self.vector
        return await self._read(vector, "recall", lambda: vector.recall(query, target=target, engine=engine,
                                                                        limit=limit), local)

    async def get(self, incident_id: str) -> dict[str, Any] | None:
        await self.start()
        state = self.state
        got: dict[str, Any] | None = await self._read(
            state, "incident", lambda: state.get(incident_id),  # type: ignore[union-attr]
            lambda: self.local.get(incident_id))
        if got is None and state is not None:
            got = await self.local.get(incident_id)  # recorded here while the remote was behind
        return got

    async def list_incidents(self, *, open_only: bool = False, target: str | None = None,
                             since: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
        await self.start()
        state = self.state
        return await self._read(
            state, "list", lambda: state.list_incidents(  # type: ignore[union-attr]
                open_only=open_only, target=target, since=since, limit=limit),
            lambda: self.local.list_incidents(open_only=open_only, target=target, since=since, limit=limit))

    async def stats(self) -> dict[str, Any]:
        out = await self.local.stats()
        out["backends"] = self.backends
        out["spooled"] = dict(self._pending)
        out["degraded"] = dict(self.degraded)
        return out

    async def aclose(self, drain_s: float = 2.0) -> None:
        """Give the spools a short, bounded chance to drain, then close. What is still spooled stays in
        the embedded store and is replayed after the next start."""
        if self._forwarding is not None and not self._forwarding.done():
            await asyncio.wait([self._forwarding], timeout=drain_s)  # retention taken, not yet passed on
        if any(self._pending.values()) and len(self.degraded) < len(self._remotes):
            await self.settle(drain_s)
        self._closing = True
        tasks = [t for t in (*self._drains.values(), self._forwarding) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a client library that swallows a cancellation must not hang shutdown.
            await asyncio.wait(tasks, timeout=3.0)
        for r in self._remotes:
            with contextlib.suppress(Exception):
                await r.aclose()
        await self.local.aclose()
