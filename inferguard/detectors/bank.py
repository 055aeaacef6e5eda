"""Runs the detector chain for every target/model and keeps what persistence needs between cycles.

Detector functions are pure; this object owns the state they must not: the recent window, the
baselines (learned only while a target is healthy, frozen while it is not) and one Track per code.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inferguard.detectors import cache, health, kv, latency, queue
from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.persistence import Track
from inferguard.detectors.window import Condition, Window, ev
from inferguard.models import Evidence, Finding, Signals

Detector = Callable[[Window, DetectorConfig], Condition]


def registry(*pairs: tuple[str, Detector]) -> dict[str, Detector]:
    out: dict[str, Detector] = {}
    for name, fn in pairs:
        if name in out:
            raise ValueError(f"duplicate detector name {name!r}")
        out[name] = fn
    return out


DETECTORS: dict[str, Detector] = registry(
    ("kv_pressure", kv.kv_pressure),
    ("queue_buildup", queue.queue_buildup),
    ("preemption_storm", queue.preemption_storm),
    ("swap_activity", queue.swap_activity),
    ("ttft_regression", latency.ttft_regression),
    ("itl_regression", latency.itl_regression),
    ("prefix_cache_regression", cache.prefix_cache_regression),
    ("spec_decode_collapse", cache.spec_decode_collapse),
    ("error_rate", health.error_rate),
    ("engine_restart", health.engine_restart),
    ("metrics_missing", health.metrics_missing),
    ("gpu_fault", health.gpu_fault),
)

# Signals whose healthy level regressions are judged against.
BASELINED = ("ttft_p95_s", "itl_p95_s", "prefix_cache_hit_ratio", "spec_accept_ratio")
# Events rather than levels: one observation is enough.
_FIRE_NOW = {"engine_restart": 1}

_CLEAR_NOW = {"engine_restart": 1, "endpoint_unreachable": 1, "metrics_missing": 1}
# What each count of dropped samples means: (how the summary names it, the evidence note).
_DROP_NOTES: dict[str, tuple[str, str]] = {
    "duplicate_series": ("duplicate series", "a series printed more than once; the first value is kept"),
    "long_labels": ("series with over-long labels", "a label name or value past the length limit"),
    "series_over_limit": ("series over the per-page limit", "samples past the per-page series limit"),
    "models_over_limit": ("models over the per-target limit", "models past the per-target model limit"),
    "invalid_histograms": ("non-cumulative histograms", "bucket counts fall as le rises: no quantile"),
}
_TARGET = "\x00target"  # the stream key of target-level tracks; no model can be called this


@dataclass(slots=True)
class _Baseline:
    value: float = 0.0
    n: int = 0

    def learn(self, x: float, alpha: float) -> None:
        self.value = x if self.n == 0 else self.value + alpha * (x - self.value)
        self.n += 1


@dataclass(slots=True)
class _Stream:
    """State for one (target, model)."""

    samples: deque[Signals]
    tracks: dict[str, Track] = field(default_factory=dict)
    baselines: dict[str, _Baseline] = field(default_factory=dict)
    since_restart: int = 1_000_000
    dropped: bool = False  # the bounded sample deque has dropped its oldest at least once


class DetectorBank:
    def __init__(
        self,
        config: DetectorConfig | None = None,
        *,
        detectors: Mapping[str, Detector] | None = None,
        per_target: Mapping[str, DetectorConfig] | None = None,
        window: int = 20,
    ) -> None:
        self.config = config or DetectorConfig()
        self.detectors = dict(DETECTORS if detectors is None else detectors)
        self._per_target = dict(per_target or {})
        self._window = window
        self._streams: dict[tuple[str, str], _Stream] = {}

    def config_for(self, target: str) -> DetectorConfig:
        return self._per_target.get(target, self.config)

    # -- model level -------------------------------------------------------------------------
    def observe(self, s: Signals) -> list[Finding]:
        """Evaluate every detector on a new sample; return the findings active for this target/model."""
        cfg = self.config_for(s.target)
        st = self._stream(s.target, s.model)
        st.dropped = st.dropped or len(st.samples) == st.samples.maxlen  # this append drops the oldest
        st.samples.append(s)
        st.since_restart = 0 if s.restarted else st.since_restart + 1
        window = Window(tuple(st.samples), self._ready_baselines(st, cfg),
                        warming_up=st.since_restart < cfg.warmup_after_restart,
                        truncated=st.dropped)
        for code, fn in self.detectors.items():
            track = st.tracks.setdefault(code, Track())
            cond = fn(window, cfg)
            fire_after = _FIRE_NOW.get(code, cfg.fire_after)
            if cond.severity == "critical" and cond.integrated:
                fire_after = 1
            track.step(cond, s.ts, fire_after, _CLEAR_NOW.get(code, cfg.clear_after))
        if not window.warming_up and not any(t.active or t.pending for t in st.tracks.values()):
            for name in BASELINED:
                value = s.values.get(name)
                if value is not None:
                    st.baselines.setdefault(name, _Baseline()).learn(value, cfg.baseline_alpha)
        return self._findings(st, s.target, s.model)

    def mark_returned(self, target: str) -> None:
        """The target answered again after failing: judge no regressions until it has warmed up."""
        for (t, _), st in self._streams.items():
            if t == target:
                st.since_restart = 0

    # -- target level ------------------------------------------------------------------------
    def target_status(self, target: str, ts: float, *, error: str | None, engine: str | None,
                      dropped: Mapping[str, int] | None = None) -> list[Finding]:
        """Reachability, identification and what the page made us drop, judged per scrape; returns the
        active target-level findings."""
        cfg = self.config_for(target)
        st = self._stream(target, _TARGET)
        drops = {k: n for k, n in (dropped or {}).items() if n > 0}
        if error is not None:
            down = Condition("fire", "critical", f"scrape failed: {error}",
                             (ev("scrape_error", None, note=error),))
            unident = Condition("unknown")
            lost = Condition("unknown")
        else:
            lost = (Condition("fire", "warning", "dropped from the page: " + ", ".join(
                        f"{n} {_DROP_NOTES.get(k, k)[0]}" for k, n in sorted(drops.items())),
                        tuple(ev(k, float(n), note=_DROP_NOTES.get(k, ("", k))[1]) for k, n in sorted(drops.items())))
                    if drops else Condition("clear"))
            down = Condition("clear")
            unident = (Condition("fire", "warning", "no known engine metrics on this endpoint",
                                 (ev("engine", None, note="unknown"),))
                       if engine == "unknown" else Condition("clear"))
        st.tracks.setdefault("endpoint_unreachable", Track()).step(
            down, ts, cfg.unreachable_after, _CLEAR_NOW["endpoint_unreachable"])
        st.tracks.setdefault("engine_unidentified", Track()).step(unident, ts, cfg.fire_after, 1)
        # Seen on the page itself, not a level that may pass: raised at once, cleared like the others.
        st.tracks.setdefault("metrics_dropped", Track()).step(lost, ts, 1, cfg.clear_after)
        return self._findings(st, target, "")  # target-level findings name no model

    def forget(self, target: str, model: str) -> None:
        """The model is gone from the target's page: its window, baselines and tracks go too."""
        if model != _TARGET:
            self._streams.pop((target, model), None)

    def is_down(self, target: str) -> bool:
        st = self._streams.get((target, _TARGET))
        return bool(st and st.tracks.get("endpoint_unreachable", Track()).active)

    def window(self, target: str, model: str) -> list[Signals]:
        st = self._streams.get((target, model))
        return list(st.samples) if st else []

    # -- what a restart must not forget ----------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """Learned baselines and active anomalies per target/model, as plain JSON.

        A restart that imports this neither relearns baselines from zero nor waits out persistence
        again for an anomaly that was already active (which would resolve and re-page its incident).
        """
        streams = []
        for (target, model), st in self._streams.items():
            active = {code: {"since": t.since, "severity": t.last.severity, "summary": t.last.summary,
                             "evidence": [e.to_dict() for e in t.last.evidence]}
                      for code, t in st.tracks.items() if t.active and t.last is not None}
            baselines = {name: {"value": b.value, "n": b.n} for name, b in st.baselines.items()}
            if active or baselines:
                streams.append({"target": target, "model": model, "baselines": baselines, "active": active})
        return {"version": 1, "streams": streams}

    def import_state(self, doc: Mapping[str, Any]) -> int:
        """Restore what :meth:`export_state` wrote; returns how many baselines and anomalies came back.
        Malformed entries are skipped one by one (a partial memory beats none)."""
        restored = 0
        if not isinstance(doc, Mapping) or doc.get("version") != 1:
            return 0
        for entry in doc.get("streams") or []:
            try:
                st = self._stream(str(entry["target"]), str(entry["model"]))
                for name, b in (entry.get("baselines") or {}).items():
                    st.baselines[str(name)] = _Baseline(float(b["value"]), int(b["n"]))
                    restored += 1
                for code, a in (entry.get("active") or {}).items():
                    evidence = tuple(Evidence(str(e["signal"]), e.get("value"), e.get("threshold"),
                                              str(e.get("op") or ""), str(e.get("note") or ""))
                                     for e in a.get("evidence") or [])
                    cond = Condition("fire", a["severity"], str(a.get("summary") or ""), evidence)
                    st.tracks[str(code)] = Track(active=True, since=float(a["since"]), fired=1, last=cond)
                    restored += 1
            except (KeyError, TypeError, ValueError):
                continue
        return restored

    # -- helpers -----------------------------------------------------------------------------
    def _stream(self, target: str, model: str) -> _Stream:
        key = (target, model)
        st = self._streams.get(key)
        if st is None:
            st = self._streams[key] = _Stream(deque(maxlen=self._window))
        return st

    def baselines(self, target: str, model: str) -> dict[str, float]:
        """The baselines trusted so far for one target and model (signal -> value)."""
        st = self._streams.get((target, model))
        return {} if st is None else self._ready_baselines(st, self.config_for(target))

    @staticmethod
    def _ready_baselines(st: _Stream, cfg: DetectorConfig) -> dict[str, float]:
        return {k: b.value for k, b in st.baselines.items() if b.n >= cfg.baseline_min_samples}

    @staticmethod
    def _findings(st: _Stream, target: str, model: str) -> list[Finding]:
        out = []
        for code, t in st.tracks.items():
            if t.active and t.last is not None:
                out.append(Finding(code=code, target=target, model=model, severity=t.severity,
                                   ts=t.since, summary=t.last.summary, evidence=t.last.evidence))
        return out
