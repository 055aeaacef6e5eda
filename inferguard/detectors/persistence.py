"""Persistence (``for``) and hysteresis: turns per-evaluation Conditions into stable active findings."""

from __future__ import annotations

from dataclasses import dataclass

from inferguard.detectors.window import Condition


@dataclass(slots=True)
class Track:
    """The lifecycle of one anomaly code on one target/model."""

    active: bool = False
    since: float = 0.0
    fire_streak: int = 0
    clear_streak: int = 0
    unknown_streak: int = 0
    last: Condition | None = None  # the latest firing condition: severity and evidence come from it

    def step(self, cond: Condition, ts: float, fire_after: int, clear_after: int) -> None:
        state = cond.state
        if state == "fire":
            self.fire_streak += 1
            self.clear_streak = self.unknown_streak = 0
            if self.active or self.fire_streak >= fire_after:
                if not self.active:
                    self.active, self.since = True, ts
                self.last = cond
        elif state == "clear":
            self.fire_streak = self.unknown_streak = 0
            self.clear_streak += 1
            if self.active and self.clear_streak >= clear_after:
                self._reset()
        elif state == "hold":
            # Neither firing nor clear: a pending alert must start over, an active one stays.
            self.fire_streak = self.clear_streak = self.unknown_streak = 0
        else:
            # Unknown is not evidence either way; but an alert whose evidence has vanished for long
            # (traffic stopped, metric gone) is stale and must not hold an incident open for ever.
            self.unknown_streak += 1
            if self.active and self.unknown_streak >= 2 * clear_after:
                self._reset()

    @property
    def pending(self) -> bool:
        return not self.active and self.fire_streak > 0

    def _reset(self) -> None:
        self.active, self.fire_streak, self.clear_streak, self.unknown_streak = False, 0, 0, 0
        self.last = None
