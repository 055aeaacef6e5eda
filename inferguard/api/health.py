"""Heartbeat state the loop writes and the probes read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Health:
    """Healthy while cycles keep finishing: no cycle for ``stall_after_s`` (default three intervals plus
    10 s) means the loop is stuck, and that counts from start-up too, so a first cycle that never
    finishes is a stall, not an endless "starting"."""

    def __init__(self, interval_s: float, clock: Callable[[], float], *, stall_after_s: float | None = None) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.stall_after_s = stall_after_s if stall_after_s is not None else 3 * interval_s + 10
        self.started = clock()
        self.last_cycle: float | None = None
        self.cycles = 0

    def beat(self) -> None:
        self.last_cycle = self.clock()
        self.cycles += 1

    def stalled(self) -> bool:
        since = self.last_cycle if self.last_cycle is not None else self.started
        return self.clock() - since > self.stall_after_s

    def healthy(self) -> bool:
        return self.last_cycle is not None and not self.stalled()

    def status(self) -> dict[str, Any]:
        age = None if self.last_cycle is None else round(self.clock() - self.last_cycle, 3)
        return {"healthy": self.healthy(), "stalled": self.stalled(), "cycles": self.cycles,
                "last_cycle_age_s": age}
