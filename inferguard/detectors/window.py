"""What a detector sees: recent signals for one target/model plus the learned baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from inferguard.models import Evidence, Severity, Signals

State = Literal["fire", "clear", "hold", "unknown"]


@dataclass(frozen=True, slots=True)
class Condition:
    """One detector's verdict for one evaluation, before persistence.

    ``fire``: the firing condition holds. ``clear``: the (separate, stricter) clear condition holds.
    ``hold``: neither (the hysteresis band). ``unknown``: the signals it needs are missing.
    """

    state: State
    severity: Severity = "warning"
    summary: str = ""
    evidence: tuple[Evidence, ...] = ()
    # True when the firing evidence comes from counters or histograms, which integrate the whole scrape
    # interval: a critical level there is not a blip and may page on its first evaluation. Gauges are
    # snapshots (on a real vLLM under load they read 0 between scheduler updates) and never do.
    integrated: bool = False
    # On a ``hold``: a leading indicator (a projection, not a level) is present. It counts toward the
    # persistence of a firing that follows and never fires by itself.
    lead: bool = False


UNKNOWN = Condition("unknown")
CLEAR = Condition("clear")
HOLD = Condition("hold")


@dataclass(frozen=True, slots=True)
class Window:
    samples: Sequence[Signals]
    baselines: Mapping[str, float] = field(default_factory=dict)
    warming_up: bool = False  # just restarted or came back: regressions are not judged yet
    # True when older samples were dropped to keep the window bounded: the samples no longer reach back
    # to the stream's start, so a rate must be averaged over the span they cover, not the full period.
    truncated: bool = False

    @property
    def last(self) -> Signals:
        return self.samples[-1]

    def latest(self, name: str) -> float | None:
        return self.samples[-1].values.get(name) if self.samples else None

    def recent(self, name: str, n: int) -> list[float]:
        """The last ``n`` samples' known values of ``name`` (unknown ones are skipped, not zeroed)."""
        out: list[float] = []
        for s in self.samples[-n:]:
            v = s.values.get(name)
            if v is not None:
                out.append(v)
        return out

    def rate_over(self, name: str, seconds: float) -> float | None:
        """A per-second rate averaged over the last ``seconds`` (time-weighted, divided by the whole span).

        Each sample's rate covers the interval since the sample before it. The sum is divided by the full
        span even when the stream is younger, so a burst at start-up is not mistaken for a sustained rate.
        When the window was truncated (fast scrapes fill its bounded length before ``seconds``), the span
        is the one its samples cover: a steady rate reads the same at any scrape interval.
        None when the latest value is unknown.
        """
        if not self.samples or self.latest(name) is None:
            return None
        start = self.samples[-1].ts - seconds
        total = 0.0
        for prev, cur in zip(self.samples, self.samples[1:], strict=False):
            v = cur.values.get(name)
            if v is None or cur.ts <= start:
                continue
            total += v * (cur.ts - max(prev.ts, start))
        span = min(seconds, self.samples[-1].ts - self.samples[0].ts) if self.truncated else seconds
        return total / span if span > 0 else None

    def last_known(self, name: str, seconds: float) -> float | None:
        """The newest known value of ``name`` within the last ``seconds`` (None if none is)."""
        start = self.samples[-1].ts - seconds if self.samples else 0.0
        for s in reversed(self.samples):
            if s.ts < start:
                break
            v = s.values.get(name)
            if v is not None:
                return v
        return None

    def growth(self, name: str, seconds: float) -> float | None:
        """How much ``name`` rose over the last ``seconds``: latest minus the lowest value in that span."""
        now = self.latest(name)
        if now is None:
            return None
        start = self.samples[-1].ts - seconds
        span = [s.values[name] for s in self.samples if s.ts >= start and name in s.values]
        return now - min(span)

    def slope(self, name: str, n: int) -> float | None:
        """Least-squares slope per second of ``name`` over the last ``n`` samples; None if < 3 points."""
        pts = [(s.ts, s.values[name]) for s in self.samples[-n:] if name in s.values]
        if len(pts) < 3:
            return None
        mt = sum(t for t, _ in pts) / len(pts)
        mv = sum(v for _, v in pts) / len(pts)
        den = sum((t - mt) ** 2 for t, _ in pts)
        if den <= 0:
            return None
        return sum((t - mt) * (v - mv) for t, v in pts) / den


def ev(signal: str, value: float | None, threshold: float | None = None, op: str = "", note: str = "") -> Evidence:
    return Evidence(signal=signal, value=None if value is None else round(value, 6),
                    threshold=threshold, op=op, note=note)
