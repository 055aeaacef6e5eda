"""The daemon: schedules only. Everything it runs was built by :mod:`inferguard.runtime.build`.

One task group holds the signal watcher, the loop-lag monitor, the HTTP API, one consumer task per
sink, the scrape tasks and the cycle loop. Each target runs on its own schedule (its interval) with a
hard deadline per scrape (its timeout, never longer than its interval): a cycle starts the due
targets' scrapes, hands each to the :class:`~inferguard.runtime.flow.Flow` as it lands, and waits for
them at most one tick. A target still in flight then (a slow engine) finishes in the background and
is not started again until it has; it never stretches the others' cycles. Proactive checks run in the
background too, one round at a time. A cycle that stops finishing turns /healthz unhealthy.

SIGTERM/SIGINT stop it: the signal handlers stay installed until the very end, so a second signal
during shutdown is ignored, not fatal; shutdown is bounded (queued sink events flushed for at most a
few seconds), the recorded timeline is closed, one summary line is logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import anyio
from anyio.abc import TaskGroup

from inferguard.api import ApiOptions, ApiServer, Health
from inferguard.brain import BrainStage
from inferguard.errors import ConfigError
from inferguard.jsonsafe import finite
from inferguard.models import Scrape, Target, describe_scrape_failure
from inferguard.pipeline import Observation
from inferguard.protocols import CycleStatus, Probe, Source, StateStore, TargetDoc
from inferguard.runtime.fanout import Fanout
from inferguard.runtime.flow import Flow
from inferguard.runtime.probing import run_probe
from inferguard.runtime.restart import Checkpoint, restore
from inferguard.sinks.readmodel import ReadModel
from inferguard.sources.timeline import TimelineWriter
from inferguard.telemetry import Telemetry
from inferguard.urls import redact_urls


@dataclass
class DaemonOptions:
    interval_s: float
    listen: str | None = "127.0.0.1:9464"
    record: str | None = None
    duration_s: float | None = None
    log_format: str = "auto"
    log_level: int = logging.INFO
    out: TextIO = field(default_factory=lambda: sys.stdout)
    stall_after_s: float | None = None  # /healthz turns unhealthy after this long without a cycle


@dataclass
class Parts:
    """What the daemon runs, built by :func:`inferguard.runtime.build.build_daemon`."""

    source: Source
    flow: Flow
    stage: BrainStage
    fanout: Fanout
    telemetry: Telemetry
    health: Health
    log: Any
    read_model: ReadModel | None = None
    api: ApiOptions | None = None  # where and how to serve the HTTP surface; None: not at all
    writer: TimelineWriter | None = None
    probes: list[Probe] = field(default_factory=list)
    ticking: list[Ticking] = field(default_factory=list)  # outputs whose tick the daemon runs
    tick_every_s: float = 5.0
    probe_every_s: float | None = None  # canary probes per target this often; None: never
    probe_timeout_s: float = 30.0
    proactive_every: int = 0
    startup: dict[str, Any] = field(default_factory=dict)  # the start-up line's fields
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (setting, why) set but without effect
    view: Any = None  # the terminal view, when there is one: start-up notices go there
    scrape_timeout_s: float = 5.0  # a target's own timeout wins; the hard deadline is at most its interval


class Ticking(Protocol):
    """An output with a clock-driven part (the notifier's repeats, re-sends and retries; actuation's
    verifications): the daemon calls ``tick`` every ``Parts.tick_every_s``."""

    name: str

    async def tick(self) -> None: ...


SHUTDOWN_S = 10.0  # the most a shutdown waits on anything after the loop stopped (server, sinks, stores)
TICK_LIMIT_S = 120.0  # the most one output's tick may take (each delivery has its own, shorter timeout)
PROBE_CONCURRENCY = 4  # canary probes in flight at once: each one is a real request to an engine


def once(build: Callable[[], list[dict[str, Any]]]) -> Callable[[], list[dict[str, Any]]]:
    """Build on the first call, then hand every caller (each listener of a cycle) the same documents."""
    built: list[list[dict[str, Any]]] = []

    def get() -> list[dict[str, Any]]:
        if not built:
            built.append(build())
        return list(built[0])

    return get


class Daemon:
    def __init__(self, parts: Parts, targets: list[Target], options: DaemonOptions, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.parts = parts
        self.targets = targets
        self.opt = options
        self.clock = clock
        self.flow = parts.flow
        self.pipeline = parts.flow.pipeline
        self.telemetry = parts.telemetry
        self.health = parts.health
        self.log = parts.log
        self.telemetry.targets.set(len(targets))
        self._stop = anyio.Event()
        self._counts = {"cycles": 0, "scrapes": 0, "failures": 0, "internal_errors": 0}
        self._due = {t.url: 0.0 for t in targets}
        self._tick = min([options.interval_s, *[t.interval_s for t in targets if t.interval_s]])
        self._brain_failures_seen = 0
        self.last_failure: dict[str, Scrape] = {}  # per target, while it fails: what the view describes
        self._server: ApiServer | None = None
        store = parts.flow.store
        # A store that also keeps state (incident memory) carries open incidents and learned baselines
        # across a restart; an in-memory test store does not.
        self._state = store if isinstance(store, StateStore) else None
        self._checkpoint = Checkpoint(self._state, self.pipeline, clock=time.monotonic) if self._state else None
        self._tg: TaskGroup | None = None
        self._in_flight: set[str] = set()
        self._investigating = False
        self._signals = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self._say_start()
        # Installed for the whole run, cleanup included: a signal after the first is received and ignored.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            try:
                await self._restore()
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    tg.start_soon(self._watch_signals, signals)
                    tg.start_soon(self._lag_monitor)
                    self.parts.fanout.start(tg)
                    outputs = anyio.CancelScope()  # ended before the sinks close, so no tick meets a closed one
                    tg.start_soon(self._outputs, outputs)
                    if self.parts.api is not None and self.parts.read_model is not None:
                        self._server = ApiServer(self.parts.api, self.telemetry, self.health, self.parts.read_model,
                                                 self.log, self.clock)
                        tg.start_soon(self._server.serve)
                    await self._loop()
                    outputs.cancel()
                    with anyio.move_on_after(SHUTDOWN_S):
                        if self._server is not None:
                            self._server.close()  # end live streams, let uvicorn close its sockets, briefly
                            with anyio.move_on_after(3):
                                await self._server.done.wait()
                        await self.parts.fanout.aclose()  # flush what the sinks still have queued
                    tg.cancel_scope.cancel()  # scrapes still in flight, the API, the watchers
            finally:
                self._tg = None
                with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_S):
                    await self._close()
        summary = {**self._counts, "opened": self.flow.counts["opened"], "resolved": self.flow.counts["resolved"],
                   "open_incidents": len(self.pipeline.book.open_incidents()),
                   "uptime_s": round(time.monotonic() - started, 1)}
        self.log.info("watch.stopped", **summary)
        return summary

    def _say_start(self) -> None:
        """One line saying what the daemon is about to do, then each v6 setting it will not act on."""
        fields, ignored = self.parts.startup, self.parts.ignored
        self.log.info("watch.started", **fields)
        for name, why in ignored:
            self.log.warning("settings.ignored", setting=name, why=why)
        view = self.parts.view
        if view is not None and hasattr(view, "notice"):  # the live view hides log lines: say it there
            said = {k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in fields.items()}
            view.notice("inferguard watch: " + "; ".join(f"{k} {v}" for k, v in said.items()), "dim")
            for name, why in ignored:
                view.notice(f"warning: {name} is set but has no effect: {why}", "yellow")

    async def _close(self) -> None:
        """Release everything, each step on its own: one that fails or hangs must not skip the others."""
        if self.parts.writer:
            self.parts.writer.close()  # first: the recorded timeline is what an operator keeps
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("state", self._save_state),  # open incidents and learned state, before the store closes
            ("sinks", lambda: self.parts.fanout.aclose(timeout_s=0)), ("source", self.parts.source.aclose),
            ("brain", self.parts.stage.aclose), ("store", self.flow.store.aclose),
            *((f"probe:{i}", p.aclose) for i, p in enumerate(self.parts.probes))]
        for name, close in steps:
            try:
                with anyio.move_on_after(3):
                    await close()
            except Exception as exc:
                self.log.error("shutdown.failed", part=name, error=f"{type(exc).__name__}: {exc}"[:300])

    def stop(self) -> None:
        self._stop.set()

    # -- what a restart keeps (docs/memory.md) -------------------------------------------------------
    async def _restore(self) -> None:
        """Take back the open incidents and detector state remembered before a restart. Bad credentials
        stop the start (ConfigError); a backend that fails is logged and the daemon starts afresh."""
        if self._state is None:
            return
        try:
            with anyio.fail_after(30):
                got = await restore(self._state, self.pipeline, [t.url for t in self.targets])
        except ConfigError:
            raise
        except Exception as exc:  # memory must never keep monitoring from starting
            self.log.error("memory.restore_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        self.log.info("memory.restored", **got)

    async def _save_state(self, changed: bool = True, *, periodic: bool = False) -> None:
        if self._checkpoint is None:
            return
        try:
            with anyio.fail_after(2 if periodic else 10):
                if periodic:
                    await self._checkpoint.maybe(changed)
                else:
                    await self._checkpoint.save()
        except Exception as exc:  # logged and counted like any store failure, never fatal
            self.flow.counts["store_failures"] += 1
            self.log.error("memory.save_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    async def _watch_signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            self._signals += 1
            if self._signals == 1:
                self.log.info("watch.stopping", signal=signal.Signals(signum).name)
                self.stop()
            else:  # already stopping: say so, and let the shutdown finish
                self.log.warning("watch.stopping", signal=signal.Signals(signum).name, repeated=self._signals)

    async def _lag_monitor(self, period: float = 0.25) -> None:
        while True:
            before = time.monotonic()
            await anyio.sleep(period)
            self.telemetry.loop_lag.observe(max(0.0, time.monotonic() - before - period))

    # -- outputs with a schedule of their own (docs/alerting.md, docs/probes.md) -------------------
    async def _outputs(self, scope: anyio.CancelScope) -> None:
        with scope:
            async with anyio.create_task_group() as tg:
                for part in self.parts.ticking:
                    tg.start_soon(self._tick_part, part, name=f"tick:{part.name}")
                if self.parts.probes and self.parts.probe_every_s:
                    tg.start_soon(self._probe_rounds, self.parts.probe_every_s)

    async def _tick_part(self, part: Ticking) -> None:
        """Each part on its own schedule: a notifier waiting on a dead receiver never holds up a verification."""
        while True:
            await anyio.sleep(self.parts.tick_every_s)
            try:
                with anyio.fail_after(TICK_LIMIT_S):
                    await part.tick()
            except Exception as exc:  # an output's trouble is logged, never fatal
                error = redact_urls(f"{type(exc).__name__}: {exc}")[:300]
                self.log.error("output.tick_failed", part=part.name, error=error)

    async def _probe_rounds(self, every: float) -> None:
        """One canary probe per target at start and then every ``every`` seconds (a round that runs long
        delays the next, never overlaps it); at most PROBE_CONCURRENCY at once."""
        limit = anyio.CapacityLimiter(PROBE_CONCURRENCY)
        while True:
            started = time.monotonic()
            async with anyio.create_task_group() as tg:
                for probe in self.parts.probes:
                    for t in self.targets:
                        tg.start_soon(self._probe, probe, t, limit)
            await anyio.sleep(max(0.0, every - (time.monotonic() - started)))

    async def _probe(self, probe: Probe, t: Target, limit: anyio.CapacityLimiter) -> None:
        async with limit:
            ts = self.clock()
            result = await run_probe(probe, t, self.parts.probe_timeout_s)
        doc = {"ts": ts, **result}
        outcome = "ok" if doc["ok"] and doc["ran"] else ("failed" if doc["ran"] else "not_run")
        self.telemetry.probes.labels(t.url, outcome).inc()
        if outcome == "ok" and isinstance(doc["ttft_s"], int | float):
            self.telemetry.probe_ttft.labels(t.url).set(float(doc["ttft_s"]))
        if self.parts.read_model is not None:
            self.parts.read_model.probed(t.url, doc)
        say = self.log.info if outcome == "ok" else self.log.warning
        say("probe" if outcome == "ok" else f"probe.{outcome}", target=t.display, **doc)

    # -- the loop ------------------------------------------------------------------------------
    async def _loop(self) -> None:
        deadline = None if self.opt.duration_s is None else time.monotonic() + self.opt.duration_s
        tick = self._tick
        next_tick = time.monotonic()
        while not self._stop.is_set():
            await self.cycle()
            next_tick += tick
            now = time.monotonic()
            if next_tick < now:  # fell behind: skip missed ticks rather than burst
                next_tick = now + tick - ((now - next_tick) % tick)
            if deadline is not None and next_tick >= deadline:
                break
            with anyio.move_on_after(next_tick - now):
                await self._stop.wait()

    async def cycle(self) -> list[Observation]:
        t0 = time.perf_counter()
        now = self.clock()
        # Half a tick of slack: timer jitter must not push a due target to the next cycle.
        ready = [t for t in self.targets if self._due[t.url] <= now + self._tick / 2]
        due = [t for t in ready if t.url not in self._in_flight]
        observations: list[Observation] = []
        landed = anyio.Event()
        waiting = [len(due)]

        async def one(t: Target) -> None:
            try:
                # Process each result as it lands: the loop then never blocks for more than one scrape's
                # processing (~1-3 ms), instead of a whole cycle's worth at 1,000 targets.
                obs = await self.process(await self.scrape(t))
                if obs is not None:
                    observations.append(obs)
            finally:
                self._in_flight.discard(t.url)
                waiting[0] -= 1
                if waiting[0] == 0:
                    landed.set()

        async with contextlib.AsyncExitStack() as stack:
            tg: TaskGroup = self._tg if self._tg is not None else await stack.enter_async_context(
                anyio.create_task_group())  # cycle() called on its own (tests): wait for every scrape
            for t in due:
                self._due[t.url] = now + self._interval(t)
                self._in_flight.add(t.url)
                tg.start_soon(one, t)
            if due and self._tg is not None:
                # Stragglers finish in the background. Waiting a whole tick for them made a cycle end just
                # after the next tick was due, so the loop skipped it: every target, the healthy ones too,
                # was scraped every other tick whenever one target was slow. Half a tick leaves room.
                with anyio.move_on_after(self._tick / 2):
                    await landed.wait()
        self._counts["cycles"] += 1
        self.health.beat()
        self.telemetry.heartbeat.set(self.clock())
        self.telemetry.cycle_duration.observe(time.perf_counter() - t0)
        self._refresh_gauges()
        every = self.parts.proactive_every
        if every and self._counts["cycles"] % every == 0 and not self._investigating:
            self._investigating = True
            if self._tg is not None:
                self._tg.start_soon(self._investigate)
            else:  # cycle() alone (tests): in line
                await self._investigate()
        self._report_brain_failures()
        await self._save_state(any(o.events for o in observations), periodic=True)
        failures = sum(1 for o in observations if o.error)
        late = len(ready) - len(due)
        self.log.info("cycle", scraped=len(due), failed=failures,
                      open_incidents=len(self.pipeline.book.open_incidents()),
                      duration_ms=round((time.perf_counter() - t0) * 1000, 1),
                      **({"still_in_flight": late} if late else {}))
        self.parts.fanout.status(CycleStatus(self.clock(), self._counts["cycles"], once(self._open_docs),
                                             self._targets, self._brain_status))
        return observations

    def _interval(self, t: Target) -> float:
        return t.interval_s or self.opt.interval_s

    def deadline(self, t: Target) -> float:
        """A scrape's hard deadline: the target's timeout, never longer than its interval."""
        return min(t.timeout_s or self.parts.scrape_timeout_s, self._interval(t))

    async def scrape(self, t: Target) -> Scrape:
        ts, started = self.clock(), time.perf_counter()
        with anyio.move_on_after(self.deadline(t)):
            return await self.parts.source.scrape(t)
        return Scrape(target=t.url, ts=ts, error="timeout", duration_s=time.perf_counter() - started)

    async def _investigate(self) -> None:
        try:
            await self.flow.investigate()
        finally:
            self._investigating = False

    async def process(self, scrape: Scrape) -> Observation | None:
        t0 = time.perf_counter()
        if self.parts.writer:
            self.parts.writer.write(scrape)
        try:
            obs = await self.flow.process(scrape)
        except Exception as exc:  # one target's surprise must not stop the others
            # A defect, not an expected failure (those are typed Scrape errors): say so loudly, keep going.
            self._counts["internal_errors"] += 1
            self.telemetry.scrapes.labels(scrape.target, "internal_error").inc()
            self.log.error("pipeline.failed", target=scrape.target, error=f"{type(exc).__name__}: {exc}"[:300])
            return None
        self.telemetry.process_duration.observe(time.perf_counter() - t0)
        self.telemetry.scrapes.labels(scrape.target, obs.error or "ok").inc()
        if self.parts.read_model is not None:  # the dashboard's sparklines: one point per scrape
            main = next((s for s in obs.signals if s.model == self.pipeline.model_of(scrape.target)),
                        obs.signals[0] if obs.signals else None)
            self.parts.read_model.observe(scrape.target, scrape.ts, obs.engine, main.model if main else "",
                                          obs.error, main.values if main else None)
        self.telemetry.scrape_duration.labels(scrape.target).observe(scrape.duration_s)
        self._counts["scrapes"] += 1
        if obs.error:
            self._counts["failures"] += 1
            self.last_failure[scrape.target] = (scrape if scrape.error else
                                                dataclasses.replace(scrape, error=obs.error, body=None))
        else:
            self.last_failure.pop(scrape.target, None)
        return obs

    def _report_brain_failures(self) -> None:
        stage = self.parts.stage
        if stage.failures > self._brain_failures_seen:
            self._brain_failures_seen = stage.failures
            last = stage.background.last_error or stage.last_error
            self.log.warning("brain.failed", failures=stage.failures, error=last)

    def _refresh_gauges(self) -> None:
        open_ = self.pipeline.book.open_incidents()
        self.telemetry.open_incidents.set(len(open_))
        # Only what the gauge reads: the whole document of every open incident each cycle is for readers.
        self.telemetry.show_open_anomalies(
            {"target": i.target, "labels": i.labels,
             "anomalies": [{"code": a.code, "severity": a.severity, "active": a.active} for a in i.anomalies.values()]}
            for i in open_)

    # -- the status the view and the read model read -----------------------------------------------
    def _open_docs(self) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.pipeline.book.open_incidents()]

    def _targets(self) -> list[TargetDoc]:
        """Every configured target, in the configured order, scraped yet or not."""
        out = []
        latest = self.pipeline.latest()
        for t in self.targets:
            models = latest.get(t.url) or {}
            doc: TargetDoc = {"target": t.url, "name": t.name, "engine": self.pipeline.engine_of(t.url),
                              "down": self.pipeline.bank.is_down(t.url),
                              "models": {m: {"ts": s.ts, "values": finite(dict(s.values))} for m, s in models.items()}}
            failed = self.last_failure.get(t.url)
            if failed is not None:
                doc["failure"] = describe_scrape_failure(failed.error or "", failed.status, t.url, failed.detail)
                doc["failure_short"] = f"HTTP {failed.status}" if failed.error == "http_status" else failed.error
            out.append(doc)
        return out

    def _brain_status(self) -> dict[str, Any]:
        stage = self.parts.stage
        return {"failures": stage.failures, "last_error": stage.background.last_error or stage.last_error,
                "proactive": finite(dict(self.flow.proactive))}
