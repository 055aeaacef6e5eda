"""What happens to one scrape, the same in ``watch``, ``scan`` and ``replay``.

scrape → :class:`~inferguard.pipeline.Pipeline` (parse, normalise, detect, incidents) → for each
incident event: similar incidents recalled from the :class:`~inferguard.protocols.IncidentStore` →
the brain stage (rules now, refinement later) → the event recorded in the store → published to the
sinks. :meth:`Flow.apply` is the one place a diagnosis lands on an incident. A store that fails or
hangs is logged and counted, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import anyio

from inferguard.brain import Answer, BrainStage, DiagnosisUpdate
from inferguard.incidents import Incident, IncidentEvent
from inferguard.jsonsafe import finite
from inferguard.models import Scrape
from inferguard.pipeline import Observation, Pipeline
from inferguard.protocols import EventDoc, IncidentStore
from inferguard.telemetry import Telemetry

Publish = Callable[[EventDoc], None]


# Pages at least this long (characters) are parsed in a worker thread by the daemon; a real vLLM page
# is ~50,000 and parses in about a millisecond on the loop, where a thread hop would cost more.
OFFLOAD_PARSE_CHARS = 256 * 1024


def worth_advising(ev: IncidentEvent) -> bool:
    """Re-diagnose when the incident opened or its anomalies or severity changed, not on every refresh."""
    if ev.kind == "resolved":
        return False
    return ev.kind == "opened" or any(c[:1] in "+-" or c.startswith(("severity", "reopened")) for c in ev.changes)



def _plain(update: DiagnosisUpdate) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    # The incident keeps plain JSON documents; the typed answer is one of them.
    return cast(dict[str, Any], update.diagnosis), cast(list[dict[str, Any]], update.advisories)


class Flow:
    def __init__(self, pipeline: Pipeline, stage: BrainStage | None, store: IncidentStore, *,
                 publish: Publish | None = None, clock: Callable[[], float] | None = None, log: Any = None,
                 telemetry: Telemetry | None = None, store_timeout_s: float | None = None,
                 similar_limit: int = 5, offload_parse: bool = False) -> None:
        self.pipeline = pipeline
        self.stage = stage
        self.store = store
        self.publish = publish
        self.clock = clock
        self.log = log
        self.telemetry = telemetry
        self.store_timeout_s = store_timeout_s
        self.similar_limit = similar_limit
        self.counts = {"opened": 0, "resolved": 0, "store_failures": 0}
        self.proactive: dict[str, Answer] = {}
        # The daemon parses big pages off the event loop; replay and scan, which have no schedule, do not.
        self.offload_parse = offload_parse
        self._parse_limiter: anyio.CapacityLimiter | None = None

    async def process(self, scrape: Scrape) -> Observation:
        parsed = None
        if self.offload_parse and scrape.body is not None and len(scrape.body) >= OFFLOAD_PARSE_CHARS:
            # A big page parses for tens of milliseconds to seconds: in a worker thread, one at a time,
            # the event loop keeps every other target on its schedule (the GIL switches every 5 ms).
            if self._parse_limiter is None:
                self._parse_limiter = anyio.CapacityLimiter(1)
            parsed = await anyio.to_thread.run_sync(self.pipeline.parse, scrape, limiter=self._parse_limiter)
        obs = self.pipeline.observe(scrape, parsed)
        for ev in obs.events:
            if self.stage is not None and worth_advising(ev):
                await self._advise(ev)
            await self.emit(ev)
        return obs

    async def readvise(self, incident: Incident) -> None:
        """Diagnose again on the present window: a one-shot scan's verdict quotes its last samples."""
        if self.stage is not None:
            await self._advise(IncidentEvent("updated", incident))

    async def _advise(self, ev: IncidentEvent) -> None:
        assert self.stage is not None
        inc = ev.incident
        doc = inc.to_dict()
        similar = await self._recall(incident=doc)
        # The refinement needs a clock for its timestamp; without one (replay, scan) the rules suffice.
        deliver = self._deliver if self.clock is not None else None
        update = self.stage.advise(doc, self.pipeline.window(inc.target, inc.model), similar, deliver)
        if update is not None:
            inc.apply_diagnosis(inc.updated_at, *_plain(update), update.source)

    async def _deliver(self, update: DiagnosisUpdate) -> None:
        assert self.clock is not None
        ev = self.apply(update, self.clock())
        if ev is not None:
            await self.emit(ev)

    def apply(self, update: DiagnosisUpdate, ts: float) -> IncidentEvent | None:
        """The one place a late diagnosis lands: an ``updated`` event when what a person reads changed."""
        inc = self.pipeline.book.get(update.incident_id)
        if inc is None or not inc.apply_diagnosis(ts, *_plain(update), update.source):
            return None
        return inc.record(ts, "updated", (update.change,))  # into the incident's story, and out to the sinks

    async def emit(self, ev: IncidentEvent) -> None:
        if ev.kind in ("opened", "resolved"):
            self.counts[ev.kind] += 1
        if self.telemetry is not None:
            self.telemetry.incident_events.labels(ev.kind).inc()
        doc = ev.to_dict()
        # The store also gets the signal window, which its fingerprint recall is computed from.
        inc = ev.incident
        await self._store("record", self.store.record, {**doc, "window": self.pipeline.window(inc.target, inc.model)})
        if self.publish is not None:
            self.publish(doc)

    async def _recall(self, **kw: Any) -> list[dict[str, Any]]:
        got = await self._store("recall", self.store.recall, limit=self.similar_limit, **kw)
        return got if isinstance(got, list) else []

    async def _store(self, verb: str, call: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            if self.store_timeout_s is None:
                return await call(*args, **kw)
            with anyio.fail_after(self.store_timeout_s):
                return await call(*args, **kw)
        except Exception as exc:  # a store's trouble is logged and counted, never fatal
            self.counts["store_failures"] += 1
            if self.telemetry is not None:
                self.telemetry.store_failures.labels(verb).inc()
            if self.log is not None:
                reason = "timeout" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
                self.log.error("store.failed", verb=verb, error=reason[:300])
            return None

    # -- proactive ---------------------------------------------------------------------------------
    async def investigate(self) -> int:
        """Proactive W1–W4 checks of every healthy target, with its remembered incidents; returns how
        many were started."""
        if self.stage is None:
            return 0
        started = 0
        open_targets = {i.target for i in self.pipeline.book.open_incidents()}
        for url, models in self.pipeline.latest().items():
            if url in open_targets or not models:
                continue  # proactive means before an incident
            model = next(iter(models))
            window = self.pipeline.window(url, model)
            if len(window) < 3:
                continue
            if self.stage.busy:
                break  # the brain would skip it: spare the store a recall per healthy target
            similar = await self._recall(target=url)
            started += self.stage.investigate(url, self.pipeline.engine_of(url), model, window, similar,
                                              self._proactive, synthetic=self.pipeline.is_synthetic(url))
        return started

    def _proactive(self, target: str, model: str, answer: Answer) -> None:
        self.proactive[target] = answer
        if answer.get("advisories") and self.log is not None:
            self.log.warning("advisory.proactive", target=target, model=model, answer=finite(answer))


def dumps(obj: Any) -> str:
    """Strict JSON (NaN and infinities become null), non-ASCII kept."""
    return json.dumps(finite(obj), ensure_ascii=False)
