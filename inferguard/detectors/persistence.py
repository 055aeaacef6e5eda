"""Persistence (``for``) and hysteresis: turns per-evaluation Conditions into stable active findings.

Severity has its own persistence, like the finding itself: an active finding becomes critical after
``fire_after`` critical evaluations among the last ``fire_after + 1`` (one if the critical evidence is
integrated over the interval), and falls back to warning only after ``clear_after`` evaluations in a row
that are not critical. A finding that opens is critical only if critical held that long, too.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferguard.detectors.window import Condition
from inferguard.models import Severity


@dataclass(slots=True)
class Track:
    """The lifecycle of one anomaly code on one target/model."""

    active: bool = False
    since: float = 0.0
    fired: int = 0  # bit history of recent judged evaluations, newest in bit 0; 1 = the condition fired
    clear_streak: int = 0
    unknown_streak: int = 0
    last: Condition | None = None  # the latest firing condition: evidence comes from it
    severity: Severity = "warning"  # the sustained severity, which may lag the latest condition's
    critical: int = 0  # bit history like ``fired``: 1 = the evaluation fired critical
    calm_streak: int = 0  # judged evaluations in a row that were not critical
    lead: bool = False  # the previous evaluation was a leading indicator (see Condition.lead)

    def step(self, cond: Condition, ts: float, fire_after: int, clear_after: int) -> None:
        """Fire after ``fire_after`` firing evaluations among the last ``fire_after + 1`` judged ones.

        Real overload is noisy: on a real vLLM a gauge read 0.57, 0.0, 0.0, 0.4 inside one overload, so
        "N in a row" misses it while "N of N+1" still ignores a lone blip.
        """
        state = cond.state
        lead, self.lead = self.lead, False
        if state in ("fire", "clear", "hold"):
            mask = (1 << (fire_after + 1)) - 1
            self.fired = ((self.fired << 1) | (state == "fire")) & mask
            is_critical = state == "fire" and cond.severity == "critical"
            self.critical = ((self.critical << 1) | is_critical) & mask
            self.calm_streak = 0 if is_critical else self.calm_streak + 1
            self.unknown_streak = 0
            self.lead = state == "hold" and cond.lead
        if state == "fire":
            self.clear_streak = 0
            # A leading indicator just before (KV climbing toward full) counts toward persistence: it
            # may make the finding that follows open sooner, never open one by itself.
            if self.active or self.fired.bit_count() + lead >= fire_after:
                sustained = cond.severity == "critical" and (
                    cond.integrated or self.critical.bit_count() >= fire_after)
                if not self.active:
                    self.active, self.since = True, ts
                    self.severity = "critical" if sustained else "warning"
                elif sustained:
                    self.severity = "critical"
                elif self.severity == "critical" and self.calm_streak >= clear_after:
                    self.severity = "warning"
                self.last = cond
        elif state == "clear":
            self.clear_streak += 1
            if self.active and self.clear_streak >= clear_after:
                self._reset()
        elif state == "hold":
            # Neither firing nor clear: an active alert stays, and its clearing starts over.
            self.clear_streak = 0
            if self.active and self.severity == "critical" and self.calm_streak >= clear_after:
                self.severity = "warning"
        else:
            # Unknown is not evidence either way; but an alert whose evidence has vanished for long
            # (traffic stopped, metric gone) is stale and must not hold an incident open for ever.
            self.unknown_streak += 1
            if self.active and self.unknown_streak >= 2 * clear_after:
                self._reset()

    @property
    def pending(self) -> bool:
        return not self.active and self.fired != 0

    def _reset(self) -> None:
        self.active, self.fired, self.clear_streak, self.unknown_streak = False, 0, 0, 0
        self.critical, self.calm_streak, self.severity = 0, 0, "warning"
        self.last = None
