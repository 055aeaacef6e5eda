"""The one-shot commands: ``scan`` (one look), ``record`` (write a timeline), ``replay`` (run a timeline).

They run the very flow the daemon runs (:func:`inferguard.runtime.build.build_flow`), rules only and on
the scrapes' own clock, so a replay of a recorded timeline is exact. Each returns plain data; the CLI
prints it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio

from inferguard.config import Settings
from inferguard.models import SEVERITY_RANK, Scrape, Target
from inferguard.runtime.build import build_flow, build_local_store, build_scraper
from inferguard.sources.timeline import TimelineWriter, read_timeline
from inferguard.testing import MemoryStore

EXIT_HEALTHY, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNREACHABLE = 0, 1, 2, 3


async def scan(settings: Settings, target: Target, window_s: float) -> dict[str, Any]:
    """Two scrapes ``window_s`` apart and a verdict, with the rules' diagnosis and advisories."""
    flow = build_flow(settings, [target], single_look=True)
    scraper = build_scraper(settings)
    try:
        first = await flow.process(await scraper.scrape(target))
        if first.error is None:
            await anyio.sleep(window_s)
            obs = await flow.process(await scraper.scrape(target))
        else:
            obs = first
    finally:
        await scraper.aclose()
    anomalies = [f.to_dict() | {"code": f.code, "model": f.model} for f in obs.findings]
    worst = max((SEVERITY_RANK[f.severity] for f in obs.findings), default=0)
    if obs.error is not None:
        verdict, code = "unreachable", EXIT_UNREACHABLE
    else:
        verdict = ("healthy", "warning", "critical")[worst]
        code = (EXIT_HEALTHY, EXIT_WARNING, EXIT_CRITICAL)[worst]
    signals = {s.model: dict(s.values) for s in obs.signals}
    incident = next((i for i in flow.pipeline.book.open_incidents() if i.target == target.url), None)
    return {"target": target.url, "verdict": verdict, "exit_code": code, "engine": obs.engine,
            "error": obs.error, "anomalies": anomalies, "signals": signals,
            "diagnosis": incident.diagnosis if incident else None,
            "advisories": incident.advisories if incident else []}


async def record(settings: Settings, target: Target, out: Path, interval_s: float, duration_s: float) -> int:
    """Scrape ``target`` every ``interval_s`` for ``duration_s`` into a timeline; returns the count."""
    writer = TimelineWriter(out)
    scraper = build_scraper(settings)
    end = time.monotonic() + duration_s
    try:
        while True:
            writer.write(await scraper.scrape(target))
            if time.monotonic() + interval_s > end:
                break
            await anyio.sleep(interval_s)
    finally:
        await scraper.aclose()
        writer.close()
    return writer.count


async def replay_scrapes(scrapes: Iterable[Scrape], settings: Settings,
                         events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every incident the flow opens over ``scrapes``, oldest first, as IncidentDocs. With ``events``,
    every event document as the incident store recorded it (with its signal window) is appended."""
    flow = build_flow(settings)
    for scrape in scrapes:
        await flow.process(scrape)
    if events is not None and isinstance(flow.store, MemoryStore):
        events.extend(flow.store.events)
    return [i.to_dict() for i in sorted(flow.pipeline.book.history, key=lambda i: (i.opened_at, i.id))]


def replay(file: Path, settings: Settings, events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """``inferguard replay``: the incidents of a recorded timeline (TimelineError if it is malformed)."""
    return anyio.run(replay_scrapes, read_timeline(file), settings, events)


async def remember(settings: Settings, events: list[dict[str, Any]]) -> None:
    """``replay --remember``: record replayed events into the local incident memory."""
    store = build_local_store(settings)
    try:
        for ev in events:
            await store.record(ev)
    finally:
        await store.aclose()
