"""The composition root: builds every stage from settings and runs the daemon's task group."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import anyio
import uvicorn

from inferguard.brain import BackgroundBrain, Brain, build_brain, rules_advisor
from inferguard.config import Settings
from inferguard.errors import InferGuardError
from inferguard.incidents import Incident, IncidentEvent
from inferguard.logs import configure
from inferguard.models import Scrape, Target
from inferguard.payloads import build_incident_payload, build_proactive_payload
from inferguard.pipeline import Advisor, Observation, Pipeline
from inferguard.server import Health, build_app
from inferguard.sources.http import HttpScraper
from inferguard.sources.timeline import TimelineWriter
from inferguard.telemetry import Telemetry


@dataclass
class DaemonOptions:
    interval_s: float
    listen: str | None = "127.0.0.1:9464"
    record: str | None = None
    duration_s: float | None = None
    log_format: str = "auto"
    log_level: int = logging.INFO
    out: TextIO = field(default_factory=lambda: sys.stdout)


class Daemon:
    def __init__(self, settings: Settings, targets: list[Target], options: DaemonOptions, *,
                 scraper: HttpScraper | None = None, clock: Callable[[], float] = time.time,
                 advisor: Advisor | None = rules_advisor, brain: Brain | None = None) -> None:
        self.settings = settings
        self.targets = targets
        self.opt = options
        self.clock = clock
        self.scraper = scraper or HttpScraper(timeout_s=settings.scrape.timeout_seconds,
                                              max_body_bytes=settings.scrape.max_body_bytes,
                                              concurrency=settings.scrape.concurrency, clock=clock)
        self.pipeline = Pipeline(targets, config=settings.detect.detector_config(), advisor=advisor)
        self.telemetry = Telemetry()
        self.telemetry.targets.set(len(targets))
        self.health = Health(options.interval_s, clock)
        self.log = configure(options.log_format, options.out, options.log_level)
        self._writer = TimelineWriter(options.record) if options.record else None
        self._stop = anyio.Event()
        self._counts = {"cycles": 0, "scrapes": 0, "failures": 0, "opened": 0, "resolved": 0, "internal_errors": 0}
        self._due = {t.url: 0.0 for t in targets}
        # The rules answer synchronously inside the pipeline; an LLM (or a remote brain) refines it off
        # the loop, and proactive W1–W4 investigations run there too. The loop never waits on either.
        llm = settings.brain if settings.brain.gmi_api_key is not None else None
        self.brain = brain or build_brain(settings.brain.brain_mode, url=settings.brain.brain_url, llm=llm)
        self._refine = llm is not None or settings.brain.brain_mode == "remote" or brain is not None
        self.background = BackgroundBrain(self.brain, max_in_flight=2)
        self._brain_failures_seen = 0
        self.proactive: dict[str, dict[str, Any]] = {}
        self._tick = min([options.interval_s, *[t.interval_s for t in targets if t.interval_s]])
        self.view: Any = None
        self._server: uvicorn.Server | None = None
        self._server_done = anyio.Event()

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_signals)
                tg.start_soon(self._lag_monitor)
                if self.opt.listen:
                    tg.start_soon(self._serve)
                await self._loop()
                if self._server is not None:
                    self._server.should_exit = True  # let uvicorn close its sockets, briefly
                    with anyio.move_on_after(3):
                        await self._server_done.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.scraper.aclose()
                await self.background.aclose()
            if self._writer:
                self._writer.close()
        summary = {**self._counts, "open_incidents": len(self.pipeline.book.open_incidents()),
                   "uptime_s": round(time.monotonic() - started, 1)}
        self.log.info("watch.stopped", **summary)
        return summary

    def stop(self) -> None:
        self._stop.set()

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                self.stop()
                return

    async def _serve(self) -> None:
        assert self.opt.listen is not None
        host, _, port = self.opt.listen.rpartition(":")
        app = build_app(self.telemetry, self.health, self.incidents_json, self.targets_json)
        config = uvicorn.Config(app, host=host, port=int(port), log_level="warning", access_log=False,
                                lifespan="off")
        server = self._server = uvicorn.Server(config)
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # the daemon owns signals
        try:
            await server.serve()
        except (OSError, SystemExit) as exc:
            # A taken port must not kill monitoring; say so loudly and carry on without the endpoint.
            self.log.error("server.failed", listen=self.opt.listen, error=str(exc))
        finally:
            self._server_done.set()

    async def _lag_monitor(self, period: float = 0.25) -> None:
        while True:
            before = time.monotonic()
            await anyio.sleep(period)
            self.telemetry.loop_lag.observe(max(0.0, time.monotonic() - before - period))

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
        due = [t for t in self.targets if self._due[t.url] <= now + self._tick / 2]
        observations: list[Observation] = []

        async def one(t: Target) -> None:
            # Process each result as it lands: the loop then never blocks for more than one scrape's
            # processing (~1-3 ms), instead of a whole cycle's worth at 1,000 targets.
            obs = self.process(await self.scraper.scrape(t))
            if obs is not None:
                observations.append(obs)

        async with anyio.create_task_group() as tg:
            for t in due:
                self._due[t.url] = now + (t.interval_s or self.opt.interval_s)
                tg.start_soon(one, t)
        self._counts["cycles"] += 1
        self.health.beat()
        self.telemetry.heartbeat.set(self.clock())
        self.telemetry.cycle_duration.observe(time.perf_counter() - t0)
        self._refresh_gauges()
        every = self.settings.brain.proactive_cycle_every
        if every and self._counts["cycles"] % every == 0:
            self._investigate()
        self._report_brain_failures()
        failures = sum(1 for o in observations if o.error)
        self.log.info("cycle", scraped=len(due), failed=failures,
                      open_incidents=len(self.pipeline.book.open_incidents()),
                      duration_ms=round((time.perf_counter() - t0) * 1000, 1))
        if self.view is not None:
            self.view.update(self)
        return observations

    def process(self, scrape: Scrape) -> Observation | None:
        t0 = time.perf_counter()
        if self._writer:
            self._writer.write(scrape)
        try:
            obs = self.pipeline.observe(scrape)
        except Exception as exc:  # one target's surprise must not stop the others
            # A defect, not an expected failure (those are typed Scrape errors): say so loudly, keep going.
            self._counts["internal_errors"] += 1
            self.telemetry.scrapes.labels(scrape.target, "internal_error").inc()
            self.log.error("pipeline.failed", target=scrape.target, error=f"{type(exc).__name__}: {exc}"[:300])
            return None
        self.telemetry.process_duration.observe(time.perf_counter() - t0)
        self.telemetry.scrapes.labels(scrape.target, obs.error or "ok").inc()
        self.telemetry.scrape_duration.labels(scrape.target).observe(scrape.duration_s)
        self._counts["scrapes"] += 1
        if obs.error:
            self._counts["failures"] += 1
        for ev in obs.events:
            self.emit(ev)
            if self._refine and ev.kind != "resolved" and ev.incident.diagnosis is not None:
                self._refine_diagnosis(ev.incident)
        return obs

    # -- the brain, off the loop -----------------------------------------------------------------
    def _refine_diagnosis(self, inc: Incident) -> None:
        try:
            payload = build_incident_payload(inc.to_dict(), self.pipeline.window(inc.target, inc.model),
                                             self.pipeline.similar(inc), redact=self.settings.brain.llm_redact)
        except InferGuardError as exc:
            self.log.warning("brain.failed", incident=inc.id, error=str(exc)[:300])
            return

        def apply(answer: dict[str, Any]) -> None:
            diagnosis = answer.get("diagnosis") or {}
            if not inc.apply_diagnosis(self.clock(), diagnosis, list(answer.get("advisories", [])),
                                       str(diagnosis.get("source") or "llm")):
                return
            why = diagnosis.get("fallback_reason")
            self.emit(IncidentEvent("updated", inc, (f"diagnosis:{diagnosis.get('source')}" +
                                                     (f" ({why})" if why else ""),)))

        self.background.submit(inc.id, payload, apply)

    def _investigate(self) -> None:
        open_targets = {i.target for i in self.pipeline.book.open_incidents()}
        for url, models in self.pipeline.latest().items():
            if url in open_targets or not models or self.background.in_flight >= 64:
                continue  # proactive means before an incident; and never pile work on a slow brain
            model = next(iter(models))
            window = self.pipeline.window(url, model)
            if len(window) < 3:
                continue
            try:
                payload = build_proactive_payload(url, self.pipeline.engine_of(url), model, window, [],
                                                  synthetic=self.pipeline.is_synthetic(url))
            except InferGuardError as exc:
                self.log.warning("brain.failed", target=url, error=str(exc)[:300])
                continue

            def apply(answer: dict[str, Any], url: str = url, model: str = model) -> None:
                self.proactive[url] = answer
                if answer.get("advisories"):
                    self.log.warning("advisory.proactive", target=url, model=model, answer=_finite(answer))

            self.background.submit(f"proactive:{url}", payload, apply, kind="investigate")

    def _report_brain_failures(self) -> None:
        if self.background.failures > self._brain_failures_seen:
            self._brain_failures_seen = self.background.failures
            self.log.warning("brain.failed", failures=self.background.failures, error=self.background.last_error)

    def emit(self, ev: IncidentEvent) -> None:
        self.telemetry.incident_events.labels(ev.kind).inc()
        if ev.kind in ("opened", "resolved"):
            self._counts[ev.kind] += 1
        self.log.warning(f"incident.{ev.kind}", changes=list(ev.changes), incident=ev.incident.to_dict())
        if self.view is not None:
            self.view.incident(ev)

    def _refresh_gauges(self) -> None:
        self.telemetry.open_anomalies.clear()
        open_ = self.pipeline.book.open_incidents()
        self.telemetry.open_incidents.set(len(open_))
        for inc in open_:
            for a in inc.anomalies.values():
                if a.active:
                    self.telemetry.open_anomalies.labels(inc.target, a.code).inc()

    # -- read models for the API ---------------------------------------------------------------
    def incidents_json(self) -> list[dict[str, Any]]:
        return [_finite(i.to_dict()) for i in self.pipeline.book.history]

    def targets_json(self) -> list[dict[str, Any]]:
        out = []
        for url, models in self.pipeline.latest().items():
            out.append({"target": url, "engine": self.pipeline.engine_of(url), "down": self.pipeline.bank.is_down(url),
                        "models": {m: {"ts": s.ts, "values": _finite(dict(s.values))} for m, s in models.items()}})
        return out


def _finite(obj: Any) -> Any:
    """JSON has no NaN/Infinity; the API must stay valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_finite(obj), ensure_ascii=False)
