"""/healthz's notion of a stall, on an injected clock: no cycle for ``stall_after_s`` is unhealthy, and
that counts from start-up, so a first cycle that never finishes is a stall too."""

from __future__ import annotations

from inferguard.api import Health
from inferguard.testing import FakeClock


def test_a_stall_counts_from_start_and_from_the_last_cycle() -> None:
    clock = FakeClock()
    h = Health(1.0, clock, stall_after_s=5.0)
    assert not h.stalled() and not h.healthy()  # starting: not stalled, not yet healthy
    clock.advance(5.5)
    assert h.stalled()  # the first cycle never finished
    h.beat()
    assert h.healthy() and h.status()["stalled"] is False
    clock.advance(4.0)
    assert h.healthy()
    clock.advance(2.0)
    assert h.stalled() and not h.healthy() and h.status()["last_cycle_age_s"] == 6.0


def test_the_default_stall_is_three_intervals_and_ten_seconds() -> None:
    assert Health(30.0, FakeClock()).stall_after_s == 100.0
