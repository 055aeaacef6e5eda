"""Heartbeat state the loop writes and the probes read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Health:
    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.last_cycle: float | None = None
        self.cycles = 0

    def beat(self) -> None:
        self.last_cycle = self.clock()
        self.cycles += 1

    def healthy(self) -> bool:
        # Alive while cycles keep finishing; three missed intervals means the loop is stuck.
        return self.last_cycle is not None and self.clock() - self.last_cycle <= 3 * self.interval_s + 10

    def status(self) -> dict[str, Any]:
        age = None if self.last_cycle is None else round(self.clock() - self.last_cycle, 3)
        return {"healthy": self.healthy(), "cycles": self.cycles, "last_cycle_age_s": age}
