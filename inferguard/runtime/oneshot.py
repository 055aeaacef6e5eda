"""The one-shot commands: ``scan`` (one look), ``record`` (write a timeline), ``replay`` (run a timeline).

They run the very flow the daemon runs (:func:`inferguard.runtime.build.build_flow`), rules only and on
the scrapes' own clock, so a replay of a recorded timeline is exact. Each returns plain data; the CLI
prints it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from signal import SIGINT, SIGTERM
from typing import Any, Protocol, TypeVar

import anyio

from inferguard.actuation import WebhookActuator
from inferguard.config import Settings
from inferguard.errors import OutputError
from inferguard.memory.store import Memory
from inferguard.models import SEVERITY_RANK, Scrape, Target, describe_scrape_failure
from inferguard.pipeline import Observation, Pipeline
from inferguard.protocols import EventDoc
from inferguard.runtime.actuate import ActuationLane, book_recorder, latest_reader
from inferguard.runtime.build import build_flow, build_scraper, build_store
from inferguard.runtime.flow import Flow
from inferguard.sources.timeline import TimelineWriter, read_timeline
from inferguard.testing import FakeClock, MemoryStore

EXIT_HEALTHY, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNREACHABLE = 0, 1, 2, 3


# Checks that compare with a baseline learned while the target is healthy (detectors/bank.py BASELINED).
BASELINE_CHECKS = {"ttft_p95_s": "ttft_regression", "itl_p95_s": "itl_regression",
                   "prefix_cache_hit_ratio": "prefix_cache_regression", "spec_accept_ratio": "spec_decode_collapse"}
OnScrape = Callable[[Scrape], None]
T = TypeVar("T")


async def scan(settings: Settings, target: Target, window_s: float, samples: int = 2) -> dict[str, Any]:
    """``samples`` scrapes ``window_s`` apart and a verdict, with the rules' diagnosis and advisories made
    from the same samples, and the checks this many samples could not make (``not_judged``)."""
    flow = build_flow(settings, [target], single_look=True)
    scraper = build_scraper(settings)
    seen: set[str] = set()
    taken = 0
    try:
        while True:
            scrape = await scraper.scrape(target)
            obs = await flow.process(scrape)
            taken += 1
            if obs.error is not None or taken >= samples:
                break
            seen.update(k for s in obs.signals for k in s.values)
            await anyio.sleep(window_s)
    finally:
        await scraper.aclose()
    seen.update(k for s in obs.signals for k in s.values)
    anomalies = [f.to_dict() | {"code": f.code, "model": f.model} for f in obs.findings]
    worst = max((SEVERITY_RANK[f.severity] for f in obs.findings), default=0)
    detail = None
    if obs.error is not None:
        verdict, code = "unreachable", EXIT_UNREACHABLE
        detail = describe_scrape_failure(obs.error, scrape.status, target.url, scrape.detail)
    else:
        verdict = ("healthy", "warning", "critical")[worst]
        code = (EXIT_HEALTHY, EXIT_WARNING, EXIT_CRITICAL)[worst]
    signals = {s.model: dict(s.values) for s in obs.signals}
    incident = next((i for i in flow.pipeline.book.open_incidents() if i.target == target.url), None)
    if incident is not None:
        await flow.readvise(incident)  # the diagnosis quotes the same samples as the anomalies
    return {"target": target.url, "verdict": verdict, "exit_code": code, "engine": obs.engine,
            "error": obs.error, "error_detail": detail, "samples": taken, "anomalies": anomalies,
            "signals": signals, "not_judged": [] if obs.error else _not_judged(flow, target, obs, seen),
            "diagnosis": incident.diagnosis if incident else None,
            "advisories": incident.advisories if incident else []}


def _not_judged(flow: Flow, target: Target, obs: Observation, seen: set[str]) -> list[dict[str, str]]:
    cfg = flow.pipeline.bank.config_for(target.url)
    needed = cfg.warmup_after_restart + cfg.baseline_min_samples  # scrapes before a baseline is trusted
    ready = {k for s in obs.signals for k in flow.pipeline.bank.baselines(target.url, s.model)}
    out = []
    for signal, check in BASELINE_CHECKS.items():
        if signal in ready:
            continue
        why = (f"need a baseline learned over {needed} scrapes (--samples {needed}, or `inferguard watch`)"
               if signal in seen else
               "no data in these scrapes (not exposed by this engine, or no request finished between scrapes)")
        out.append({"code": check, "signal": signal, "why": why})
    return out


async def record(settings: Settings, target: Target, out: Path, interval_s: float, duration_s: float,
                 on_scrape: OnScrape | None = None) -> int:
    """Scrape ``target`` every ``interval_s`` for ``duration_s`` into a timeline; returns the count.
    ``on_scrape`` hears every scrape (the CLI's progress). SIGTERM/SIGINT end it early and cleanly: every
    line written stays readable (OutputError when ``out`` cannot be written)."""
    writer = TimelineWriter(out)
    scraper = build_scraper(settings)
    end = time.monotonic() + duration_s

    async def stop_on_signal(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(SIGTERM, SIGINT) as signals:
            async for _ in signals:
                scope.cancel()  # a scrape in flight is dropped, never half-written
                return

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal, tg.cancel_scope)
            while True:
                scrape = await scraper.scrape(target)
                writer.write(scrape)
                if on_scrape is not None:
                    on_scrape(scrape)
                if time.monotonic() + interval_s > end:
                    break
                await anyio.sleep(interval_s)
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await scraper.aclose()
        writer.close()
    return writer.count


async def replay_scrapes(scrapes: Iterable[Scrape], settings: Settings,
                         events: list[dict[str, Any]] | None = None,
                         payloads: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every incident the flow opens over ``scrapes``, oldest first, as IncidentDocs. With ``events``,
    every event document as the incident store recorded it (with its signal window) is appended; with
    ``payloads``, every brain payload built for an incident, in order."""
    flow = build_flow(settings)
    if payloads is not None and flow.stage is not None:
        flow.stage.payloads = payloads
    for scrape in scrapes:
        await flow.process(scrape)
    if events is not None and isinstance(flow.store, MemoryStore):
        events.extend(flow.store.events)
    return [i.to_dict() for i in sorted(flow.pipeline.book.history, key=lambda i: (i.opened_at, i.id))]


def replay(file: Path, settings: Settings, events: list[dict[str, Any]] | None = None,
           payloads: list[dict[str, Any]] | None = None,
           warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """``inferguard replay``: the incidents of a recorded timeline (TimelineError if it is malformed;
    ``warn`` hears of a truncated tail, which ends the timeline)."""
    return anyio.run(replay_scrapes, read_timeline(file, warn=warn), settings, events, payloads)


def write_payloads(payloads: list[dict[str, Any]], out: Path) -> list[Path]:
    """``replay --payloads DIR``: one file per brain payload, ``<incident id>-<n>.json`` in the order the
    brain saw them, exactly what ``rlm-agent advise`` reads (a file or the whole folder)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        seen: dict[str, int] = {}
        written = []
        for p in payloads:
            inc = str(p["incident"]["id"])
            seen[inc] = seen.get(inc, 0) + 1
            path = out / f"{inc}-{seen[inc]:02d}.json"
            path.write_text(json.dumps(p, indent=1, allow_nan=False), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise OutputError(f"--payloads: cannot write to {out}: {exc.strerror or exc}") from None
    return written


async def using_memory(settings: Settings, use: Callable[[Memory], Awaitable[T]]) -> tuple[T, Memory]:
    """Run ``use`` on the configured incident memory (the embedded store plus Redis/Upstash when
    configured), as the daemon reads and writes it, opened quiet, and close it. Returns the result and
    the closed memory, whose ``backends``, ``degraded``, ``fallbacks`` and ``spooled`` say what served
    and what did not answer: the command says that once, at the end."""
    memory = build_store(settings, quiet=True)
    try:
        return await use(memory), memory
    finally:
        await memory.aclose()


async def remember(settings: Settings, events: list[dict[str, Any]], settle_s: float = 10.0) -> dict[str, Any]:
    """``replay --remember``: record replayed events into the configured incident memory, as the daemon
    does: the embedded store, plus Redis/Upstash Redis and Upstash Vector when configured. A remote that
    is down gets the events through the embedded store's spool, replayed when InferGuard next reaches
    it (the backends are idempotent per event, so nothing doubles). Returns the backends, what is still
    spooled per remote and why each remote that did not answer did not."""

    async def record_all(memory: Memory) -> dict[str, Any]:
        for ev in events:
            await memory.record(ev)
        await memory.flush()
        # A remote that answers but is catching up on an older spool gets a bounded chance to finish.
        if any(name not in memory.degraded for name in memory.spooled):
            await memory.settle(settle_s)
        return {"backends": memory.backends, "degraded": dict(memory.degraded)}

    result, memory = await using_memory(settings, record_all)
    return result | {"spooled": memory.spooled}


class TickingSink(Protocol):
    """A notification sink: the Sink protocol plus its clock-driven part."""

    async def send(self, event: EventDoc) -> None: ...

    async def tick(self) -> None: ...


async def replay_outputs(file: Path, settings: Settings, clock: FakeClock, *, notifier: TickingSink | None = None,
                         actuator: WebhookActuator | None = None,
                         on_observation: Callable[[Observation], Awaitable[None]] | None = None) -> Pipeline:
    """``replay --notify``: the flow over a timeline on the recorded clock; each incident event goes to
    ``notifier``, each new advisory of an open incident is offered once to ``actuator``, whose
    verifications land on the incident; the notifier ticks after every scrape."""
    flow = build_flow(settings)
    pipeline = flow.pipeline
    lane = None if actuator is None else ActuationLane(actuator, book_recorder(pipeline), latest_reader(pipeline))
    for scrape in read_timeline(file):
        clock.now = scrape.ts
        obs = await flow.process(scrape)
        for ev in obs.events:
            doc = ev.to_dict()
            if notifier is not None:
                await notifier.send(doc)
            if lane is not None:
                await lane.send(doc)
        if lane is not None:
            await lane.tick()
        if on_observation is not None:
            await on_observation(obs)
        if notifier is not None:
            await notifier.tick()
    return pipeline
