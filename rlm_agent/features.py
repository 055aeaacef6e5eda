"""Numbers the rules, the advisories, the LLM check and W1–W4 all read, computed once per payload.

A signal absent from every sample is unknown: it has no :class:`Stats` at all, never zeros.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Stats:
    """One signal over the window, oldest first. ``slope`` is per second (least squares)."""

    points: tuple[tuple[float, float], ...]

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points]

    @property
    def latest(self) -> float:
        return self.points[-1][1]

    @property
    def first(self) -> float:
        return self.points[0][1]

    @property
    def max(self) -> float:
        return max(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.points)

    @property
    def n(self) -> int:
        return len(self.points)

    def frac_at_least(self, threshold: float) -> float:
        return sum(1 for v in self.values if v >= threshold) / len(self.points)

    @property
    def slope(self) -> float | None:
        """Least-squares slope per second; None with fewer than 3 points or no time spread."""
        if len(self.points) < 3:
            return None
        t0 = self.points[0][0]
        xs = [t - t0 for t, _ in self.points]
        ys = self.values
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx <= 0:
            return None
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx

    def baseline(self) -> float:
        """The first third of the window: what "before" looked like."""
        k = max(1, len(self.points) // 3)
        head = self.values[:k]
        return sum(head) / len(head)

    def after_baseline_max(self) -> float:
        """The worst value after the baseline third: a spike inside the baseline (the first requests of
        a cold engine on the real recordings) is not a regression of the window."""
        k = max(1, len(self.points) // 3)
        return max(self.values[k:]) if len(self.values) > k else self.values[-1]


@dataclass(slots=True)
class Features:
    kind: str
    engine: str
    model: str
    target: str
    synthetic: bool
    now: float
    stats: dict[str, Stats]
    active: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    anomaly_evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    similar: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    evidence_values: dict[str, list[float]] = field(default_factory=dict)

    def get(self, name: str) -> Stats | None:
        return self.stats.get(name)

    def latest(self, name: str) -> float | None:
        s = self.stats.get(name)
        return None if s is None else s.latest

    def peak(self, name: str) -> float | None:
        s = self.stats.get(name)
        return None if s is None else s.max

    def mean(self, name: str) -> float | None:
        s = self.stats.get(name)
        return None if s is None else s.mean

    def incident_peak(self, name: str) -> float | None:
        """The largest value seen for ``name`` in the window or in the incident's anomaly evidence.

        The window is the last few scrapes; the evidence is what the detectors saw when they fired,
        possibly before the window starts (an incident winding down still had its peak)."""
        seen = list(self.evidence_values.get(name, []))
        s = self.stats.get(name)
        if s is not None:
            seen.append(s.max)
        return max(seen) if seen else None

    def has(self, code: str) -> bool:
        """An anomaly of this code was part of the incident (active now or earlier)."""
        return code in self.seen

    def paired(self, a: str, b: str) -> list[tuple[float, float]]:
        """``(a, b)`` values from the samples that hold both."""
        sa, sb = self.stats.get(a), self.stats.get(b)
        if sa is None or sb is None:
            return []
        at = dict(sb.points)
        return [(v, at[ts]) for ts, v in sa.points if ts in at]

    def value_at_first_crossing(self, signal: str, of: str, threshold: float) -> float | None:
        """``of``'s value at the first sample where ``signal`` reached ``threshold``."""
        s, o = self.stats.get(signal), self.stats.get(of)
        if s is None or o is None:
            return None
        at = dict(o.points)
        for ts, v in s.points:
            if v >= threshold and ts in at:
                return at[ts]
        return None


def _series(window: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for sample in sorted(window, key=lambda s: float(s["ts"])):
        ts = float(sample["ts"])
        for name, value in sample["values"].items():
            out.setdefault(name, []).append((ts, float(value)))
    return out


def extract(payload: Mapping[str, Any]) -> Features:
    """Build :class:`Features` from a payload that already passed the schema."""
    series = _series(payload.get("window", []))
    incident = payload.get("incident") or {}
    active: set[str] = set()
    seen: set[str] = set()
    evidence: dict[str, list[dict[str, Any]]] = {}
    evidence_values: dict[str, list[float]] = {}
    for anomaly in incident.get("anomalies", []):
        seen.add(anomaly["code"])
        if anomaly.get("active", False):
            active.add(anomaly["code"])
        evidence.setdefault(anomaly["code"], []).extend(anomaly.get("evidence", []))
        # An anomaly's evidence names a value the window may not hold (a short window, a signal the
        # window dropped): keep it as one observation rather than calling the signal unknown.
        for item in anomaly.get("evidence", []):
            name, value = item.get("signal"), item.get("value")
            if isinstance(name, str) and isinstance(value, int | float):
                evidence_values.setdefault(name, []).append(float(value))
            if isinstance(name, str) and isinstance(value, int | float) and name not in series:
                series.setdefault(name, []).append((float(anomaly.get("since", 0.0)), float(value)))
    stats = {name: Stats(tuple(points)) for name, points in series.items() if points}
    window = payload.get("window", [])
    now = max(float(s["ts"]) for s in window) if window else float(incident.get("updated_at", 0.0))
    labels = dict(payload.get("labels") or incident.get("labels") or {})
    return Features(
        kind=str(payload["kind"]),
        engine=str(payload["engine"]),
        model=str(payload["model"]),
        target=str(payload["target"]),
        synthetic=bool(payload["synthetic"]) or bool(incident.get("synthetic", False)),
        now=now,
        stats=stats,
        active=active,
        seen=seen,
        anomaly_evidence=evidence,
        similar=list(payload.get("similar", [])),
        labels=labels,
        fingerprint=str(incident.get("fingerprint", "")),
        evidence_values=evidence_values,
    )
