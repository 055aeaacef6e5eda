"""Delivery bookkeeping: the persistent outbox, retry backoff with jitter, and per-sink rate limits.

A notification enters the outbox before its first attempt and leaves it only when delivered, so a
failing receiver or a restart never loses one. Entries of one incident on one sink go out in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

MAX_ENTRIES = 10_000  # past this the oldest entry is dropped, loudly: memory is finite, pages are not free


def backoff(attempts: int, *, base: float = 2.0, cap: float = 300.0, rand: Callable[[], float]) -> float:
    """Seconds before retry number ``attempts`` (1-based): exponential, capped, "equal jitter" (half fixed,
    half random) so retries from many sinks spread out yet never come back at once."""
    ceiling = min(cap, base * 2.0 ** max(0, attempts - 1))
    return ceiling / 2 + rand() * ceiling / 2


class RateLimiter:
    """A token bucket: ``per_minute`` deliveries per minute, bursts up to the same number."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.at: float | None = None

    def take(self, now: float) -> float:
        """0 when a delivery may go now (and takes the token), else the seconds until one may."""
        if self.at is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Outbox:
    def __init__(self, entries: list[Mapping[str, Any]] | None = None, seq: int = 0) -> None:
        self.entries: list[dict[str, Any]] = [dict(e) for e in entries or []]
        self.seq = seq
        self.dropped: list[dict[str, Any]] = []

    def add(self, channel: str, notice: Mapping[str, Any], now: float) -> dict[str, Any] | None:
        iid = notice["incident"].get("id")
        if notice["kind"] == "refresh" and any(e["channel"] == channel and e["notice"]["incident"].get("id") == iid
                                               for e in self.entries):
            return None  # a pending delivery carries the incident's state anyway
        if any(e["channel"] == channel and e["notice"]["key"] == notice["key"] for e in self.entries):
            return None
        self.seq += 1
        entry = {"seq": self.seq, "channel": channel, "notice": dict(notice), "attempts": 0, "next_at": now,
                 "created_at": now, "last_error": None}
        self.entries.append(entry)
        while len(self.entries) > MAX_ENTRIES:
            self.dropped.append(self.entries.pop(0))
        return entry

    def remove(self, entry: Mapping[str, Any]) -> None:
        self.entries = [e for e in self.entries if e["seq"] != entry["seq"]]

    def pending(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.entries if channel is None or e["channel"] == channel]

    def ordered(self) -> Iterator[dict[str, Any]]:
        yield from sorted(self.entries, key=lambda e: int(e["seq"]))

    def state(self) -> dict[str, Any]:
        return {"entries": self.entries, "seq": self.seq}
