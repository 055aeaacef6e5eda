"""The one module that wires the sensing stages: scrape → parse → normalise → detect → incidents.

``Pipeline.observe`` is synchronous and takes time only from the scrape it is given, so the daemon,
``scan`` and ``replay`` run the very same code and a replay of a recorded timeline is exact. It knows
no brain and no output: the runtime (:mod:`inferguard.runtime.flow`) takes its events from here to the
brain stage, the incident store and the sinks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferguard import normalise
from inferguard.detectors import DetectorBank, DetectorConfig
from inferguard.errors import ExpositionError
from inferguard.incidents import IncidentBook, IncidentEvent
from inferguard.models import Exposition, Finding, Scrape, Signals, Target
from inferguard.normalise.target import MAX_MODELS
from inferguard.sources.exposition import MAX_LABEL_LENGTH, MAX_SERIES, ExpositionParser

# A gauge the InferGuard simulator puts on every page: incidents it causes are synthetic.
SIMULATOR_MARKER = "inferguard_simulator_info"


@dataclass(frozen=True, slots=True)
class PageLimits:
    """What one target's page may make us hold (INFERGUARD_SCRAPE_MAX_*); past each, drop and count."""

    max_series: int = MAX_SERIES
    max_label_length: int = MAX_LABEL_LENGTH
    max_models: int = MAX_MODELS


@dataclass(slots=True)
class Observation:
    """What one scrape of one target turned into."""

    target: str
    ts: float
    error: str | None
    engine: str
    signals: tuple[Signals, ...]
    findings: list[Finding]
    events: list[IncidentEvent]


@dataclass(slots=True)
class _TargetState:
    target: Target
    parser: ExpositionParser
    normaliser: normalise.TargetNormaliser
    engine: str = "unknown"
    model: str = ""
    synthetic: bool = False
    failing: bool = False
    model_findings: dict[str, list[Finding]] = field(default_factory=dict)
    latest: dict[str, Signals] = field(default_factory=dict)


class Pipeline:
    def __init__(
        self,
        targets: list[Target] | None = None,
        *,
        config: DetectorConfig | None = None,
        book: IncidentBook | None = None,
        limits: PageLimits | None = None,
    ) -> None:
        self.config = config or DetectorConfig()
        self.limits = limits or PageLimits()
        self._per_target: dict[str, DetectorConfig] = {}
        self.bank = DetectorBank(self.config, per_target=self._per_target)
        self.book = book or IncidentBook()
        self._targets: dict[str, _TargetState] = {}
        for t in targets or []:
            self.add_target(t)

    # -- targets -------------------------------------------------------------------------------
    def add_target(self, target: Target) -> None:
        if target.thresholds:
            self._per_target[target.url] = self.config.with_overrides(dict(target.thresholds))
        self._targets[target.url] = _TargetState(
            target=target, parser=ExpositionParser(keep=normalise.KEEP, max_series=self.limits.max_series,
                                                   max_label_length=self.limits.max_label_length),
            normaliser=normalise.TargetNormaliser(target.url, engine_hint=target.engine_hint,
                                                  max_models=self.limits.max_models))

    def _state(self, url: str) -> _TargetState:
        st = self._targets.get(url)
        if st is None:  # replay of a timeline discovers its targets as it goes
            self.add_target(Target(url=url))
            st = self._targets[url]
        return st

    def latest(self) -> dict[str, dict[str, Signals]]:
        return {url: dict(st.latest) for url, st in self._targets.items()}

    def engine_of(self, url: str) -> str:
        return self._state(url).engine

    def model_of(self, url: str) -> str:
        """The model the target's incidents are about (the first one its page reported)."""
        return self._state(url).model

    def is_synthetic(self, url: str) -> bool:
        return self._state(url).synthetic

    # -- the cycle -----------------------------------------------------------------------------
    def parse(self, scrape: Scrape) -> Exposition | str:
        """The page of a scrape that answered, parsed, or the reason it is not a page of metrics.

        Touches only the target's own parser, so the daemon may run it in a worker thread while other
        targets are processed (never two scrapes of one target at once)."""
        if scrape.error is not None:
            return scrape.error
        if scrape.body is None:
            return "not_metrics"
        try:
            return self._state(scrape.target).parser.parse(scrape.body)
        except ExpositionError as exc:
            return exc.reason

    def observe(self, scrape: Scrape, parsed: Exposition | str | None = None) -> Observation:
        """Fold one scrape in: normalise, detect, update incidents. ``parsed`` is :meth:`parse`'s answer
        when the caller parsed the page already (off the event loop)."""
        st = self._state(scrape.target)
        signals: tuple[Signals, ...] = ()
        engine_now: str | None = None
        dropped: dict[str, int] = {}
        page = self.parse(scrape) if parsed is None else parsed
        error = page if isinstance(page, str) else None
        if not isinstance(page, str):
            result = st.normaliser.update(scrape.ts, page)
            st.engine = result.engine if result.engine != "unknown" else st.engine
            signals = result.signals
            st.synthetic = SIMULATOR_MARKER in (scrape.body or "")
            if st.failing:
                self.bank.mark_returned(scrape.target)
            for s in signals:
                st.model_findings[s.model] = self.bank.observe(s)
                st.latest[s.model] = s
            present = {s.model for s in signals}
            for gone in [m for m in st.latest if m not in present]:
                # A model that left the page takes its anomalies with it (the incident can resolve).
                del st.latest[gone]
                st.model_findings.pop(gone, None)
                self.bank.forget(scrape.target, gone)
            if signals and st.model not in present:
                st.model = signals[0].model
            engine_now = result.engine
            dropped = {**page.dropped, **result.dropped}
        st.failing = error is not None
        target_findings = self.bank.target_status(
            scrape.target, scrape.ts, error=error, engine=engine_now, dropped=dropped)
        findings = target_findings + [f for fs in st.model_findings.values() for f in fs]
        events = self.book.update(scrape.target, scrape.ts, findings, engine=st.engine, model=st.model,
                                  labels=st.target.labels, synthetic=st.synthetic, reachable=error is None)
        return Observation(scrape.target, scrape.ts, error, st.engine, signals, findings, events)

    # -- read access for the runtime -------------------------------------------------------------
    def window(self, target: str, model: str | None = None, n: int = 12) -> list[dict[str, Any]]:
        st = self._state(target)
        m = model if model is not None else st.model
        return [{"ts": s.ts, "values": dict(s.values)} for s in self.bank.window(target, m)[-n:]]
