"""Persistence (``for``) and hysteresis: turns per-evaluation Conditions into stable active findings."""

from __future__ import annotations

from dataclasses import dataclass

from inferguard.detectors.window import Condition


@dataclass(slots=True)
class Track:
    """The lifecycle of one anomaly code on one target/model."""

    active: bool = False
    since: float = 0.0
    fired: int = 0  # bit history of recent judged evaluations, newest in bit 0; 1 = the condition fired
    clear_streak: int = 0
    unknown_streak: int = 0
    last: Condition | None = None  # the latest firing condition: severity and evidence come from it

    def step(self, cond: Condition, ts: float, fire_after: int, clear_after: int) -> None:
        """Fire after ``fire_after`` firing evaluations among the last ``fire_after + 1`` judged ones.

        Real overload is noisy: on a real vLLM a gauge read 0.57, 0.0, 0.0, 0.4 inside one overload, so
        "N in a row" misses it while "N of N+1" still ignores a lone blip.
        """
        state = cond.state
        if state in ("fire", "clear", "hold"):
            self.fired = ((self.fired << 1) | (state == "fire")) & ((1 << (fire_after + 1)) - 1)
            self.unknown_streak = 0
        if state == "fire":
            self.clear_streak = 0
            if self.active or self.fired.bit_count() >= fire_after:
                if not self.active:
                    self.active, self.since = True, ts
                self.last = cond
        elif state == "clear":
            self.clear_streak += 1
            if self.active and self.clear_streak >= clear_after:
                self._reset()
        elif state == "hold":
            # Neither firing nor clear: an active alert stays, and its clearing starts over.
            self.clear_streak = 0
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
        self.last = None
