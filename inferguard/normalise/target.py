"""Per-target state: the previous scrape's counters and histograms, turned into window rates/quantiles."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from inferguard.errors import ConfigError, InferGuardError
from inferguard.models import Exposition, Signals
from inferguard.normalise.dcgm import DCGM
from inferguard.normalise.dialect import Dialect
from inferguard.normalise.identify import identify
from inferguard.normalise.quantile import histogram_quantile
from inferguard.normalise.read import Hist, ModelSnap, read
from inferguard.normalise.sglang import SGLANG
from inferguard.normalise.vllm import VLLM_V0, VLLM_V1

DIALECTS: Mapping[str, Dialect] = {d.engine: d for d in (VLLM_V1, VLLM_V0, SGLANG, DCGM)}
START_TIME = "process_start_time_seconds"  # changes when the serving process restarts
_NO_HINT = (None, "", "auto")
# What a target's ``engine`` setting may say (config can validate against this before building).
ENGINE_HINTS: tuple[str, ...] = ("auto", *DIALECTS)


# Models (GPUs for DCGM) tracked per target by default (INFERGUARD_SCRAPE_MAX_MODELS). Past it, the models
# already tracked keep their place and the rest are dropped and counted: an endpoint printing ever-new
# model names cannot grow our state.
MAX_MODELS = 64


@dataclass(frozen=True, slots=True)
class Normalised:
    engine: str
    signals: tuple[Signals, ...]  # one per model (per GPU for DCGM); empty if the engine is unknown
    restarted: bool  # a counter went backwards / the process start time changed since last update
    # What was left out, by why: ``models_over_limit``, ``invalid_histograms`` (not cumulative).
    dropped: Mapping[str, int] = field(default_factory=dict)


def _start_time(exp: Exposition) -> float | None:
    rows = exp.samples.get(START_TIME)
    if not rows:
        return None
    values = [v for _, v in rows if math.isfinite(v)]
    return max(values) if values else None


def _window(cur: ModelSnap, prev: ModelSnap, lazy: Mapping[str, str]
            ) -> tuple[dict[str, float], dict[str, Hist]] | None:
    """Counter and bucket deltas since ``prev``; ``None`` when anything went backwards (a restart)."""
    deltas: dict[str, float] = {}
    before = prev.counters
    for key, v in cur.counters.items():
        p = before.get(key)
        if p is None:
            family = lazy.get(key)
            if family is None or family not in before:
                continue  # new series: no baseline yet, so no rate this cycle
            p = 0.0
        if v < p:
            return None
        deltas[key] = v - p
    hist_deltas: dict[str, Hist] = {}
    for key, (bounds, counts) in cur.hists.items():
        ph = prev.hists.get(key)
        if ph is None:
            continue
        if ph[0] != bounds:
            continue  # bucket layout changed (a new rank appeared): no comparable window
        diff = []
        for now, then in zip(counts, ph[1], strict=True):
            if now < then:
                return None
            diff.append(now - then)
        hist_deltas[key] = (bounds, tuple(diff))
    return deltas, hist_deltas


class TargetNormaliser:
    """Normalises one target's pages. Holds the previous scrape to compute window rates/quantiles.

    The first update (and the first after :meth:`reset`, a restart or an engine change) yields
    gauges only: rates and quantiles need two scrapes.
    """

    __slots__ = ("_engine", "_prev", "_prev_ts", "_start", "engine_hint", "max_models", "target")

    def __init__(self, target: str, engine_hint: str | None = None, *, max_models: int = MAX_MODELS) -> None:
        if engine_hint not in _NO_HINT and engine_hint not in DIALECTS:
            raise ConfigError("engine_hint", f"{engine_hint!r} is not one of {', '.join(DIALECTS)} (or auto)")
        if isinstance(max_models, bool) or not isinstance(max_models, int) or max_models < 1:
            raise ConfigError("max_models", f"must be a whole number >= 1, got {max_models!r}")
        self.max_models = max_models
        self.target = target
        self.engine_hint = None if engine_hint in _NO_HINT else engine_hint
        self._engine: str | None = None
        self._prev: dict[str, ModelSnap] = {}
        self._prev_ts: float | None = None
        self._start: float | None = None

    def reset(self) -> None:
        """Forget history (the target was unreachable; what it says next starts a new window)."""
        self._engine = None
        self._prev = {}
        self._prev_ts = None
        self._start = None

    def _engine_of(self, exp: Exposition) -> str:
        engine = identify(exp)
        hint = self.engine_hint
        if engine == "unknown" and hint is not None:
            # The operator's hint settles an ambiguous page, but only one carrying that dialect's names.
            samples = exp.samples
            if any(name in samples for name in DIALECTS[hint].sample_names()):
                return hint
        return engine

    def update(self, ts: float, exp: Exposition) -> Normalised:
        if not isinstance(exp, Exposition):
            raise InferGuardError(f"{self.target}: normalise needs an Exposition, got {type(exp).__name__}")
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
            raise InferGuardError(f"{self.target}: normalise needs a finite timestamp, got {ts!r}")
        engine = self._engine_of(exp)
        start = _start_time(exp)
        restarted = False
        if self._engine is not None and engine != self._engine:
            # Another engine answers on this address: it was replaced, so it restarted (if both known).
            restarted = self._engine != "unknown" and engine != "unknown"
            self._prev = {}
            self._prev_ts = None
        if start is not None and self._start is not None and start != self._start:
            restarted = True
        elapsed = None if self._prev_ts is None else ts - self._prev_ts
        self._engine, self._start, self._prev_ts = engine, start, ts

        dialect = DIALECTS.get(engine)
        if dialect is None:
            self._prev = {}
            return Normalised(engine, (), restarted)

        invalid: set[tuple[str, str]] = set()
        snaps = read(exp, dialect, invalid)
        dropped: dict[str, int] = {}
        if invalid:
            dropped["invalid_histograms"] = len(invalid)
        if len(snaps) > self.max_models:
            # The models tracked already keep their place; newcomers fill what is left, by name.
            known = sorted(m for m in snaps if m in self._prev)
            new = sorted(m for m in snaps if m not in self._prev)
            keep = (known + new)[: self.max_models]
            dropped["models_over_limit"] = len(snaps) - len(keep)
            snaps = {m: snaps[m] for m in keep}
        signals: list[Signals] = []
        any_restart = restarted
        for model in sorted(snaps):
            cur = snaps[model]
            prev = self._prev.get(model)
            model_restart = restarted
            window = None
            if prev is not None and elapsed is not None and elapsed > 0 and not restarted:
                window = _window(cur, prev, dialect.lazy_children)
                model_restart = window is None
            deltas = window[0] if window is not None else None
            values = dialect.derive(cur.gauges, cur.counters, deltas, elapsed if elapsed else 0.0)
            if window is not None:
                _quantiles(dialect, window[1], values)
            if not all(map(math.isfinite, values.values())):
                # Overflowing sums or a le="-Inf" bucket on a hostile page: unknown, never inf/NaN.
                values = {k: v for k, v in values.items() if math.isfinite(v)}
            any_restart = any_restart or model_restart
            missing = tuple(n for n in dialect.core if n not in values)
            signals.append(Signals(self.target, ts, engine, model, values, model_restart, missing))
        if not signals:
            # Identified, yet none of the names we read: say so rather than report nothing.
            signals.append(Signals(self.target, ts, engine, "", {}, restarted, dialect.core))
        self._prev = snaps
        return Normalised(engine, tuple(signals), any_restart, dropped)


def _quantiles(dialect: Dialect, hists: Mapping[str, Hist], values: dict[str, float]) -> None:
    for spec in dialect.histograms:
        hist = hists.get(spec.key)
        if hist is None:
            continue
        bounds, counts = hist
        for q, name in spec.quantiles:
            v = histogram_quantile(q, bounds, counts)
            if v is not None:
                values[name] = v
