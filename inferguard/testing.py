"""Fakes of each stage protocol, shipped with the package (the way httpx ships ``MockTransport``).

- :class:`RecordingSink`: a :class:`~inferguard.protocols.Sink` that keeps every event; it can be made
  slow or failing, to test that the fan-out never lets a sink hold up or stop the daemon.
- :class:`MemoryStore`: an :class:`~inferguard.protocols.IncidentStore` in a dict. ``replay`` (which
  touches no memory unless ``--remember``) uses it; its recall is by anomaly codes shared (Jaccard
  ≥ 0.5, best first, newest first among equals). The daemon's store is incident memory (SQLite).
- :class:`ReplaySource`: a :class:`~inferguard.protocols.Source` that serves recorded scrapes.
- :class:`FakeClock`: a clock to inject where time matters.

None of them does I/O; they import no stage.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import anyio

from inferguard.errors import MemoryBackendError, SinkError
from inferguard.models import Scrape, Target
from inferguard.protocols import EventDoc, IncidentDoc


class RecordingSink:
    """Keeps every event it is sent, in order. ``delay_s`` makes each send slow; ``fail`` makes each
    send raise :class:`SinkError` (after recording the attempt in ``attempts``)."""

    def __init__(self, name: str = "recording", *, delay_s: float = 0.0, fail: bool = False) -> None:
        self.name = name
        self.delay_s = delay_s
        self.fail = fail
        self.events: list[dict[str, Any]] = []
        self.attempts = 0
        self.closed = False

    async def send(self, event: EventDoc) -> None:
        self.attempts += 1
        if self.delay_s:
            await anyio.sleep(self.delay_s)
        if self.fail:
            raise SinkError(f"{self.name}: told to fail")
        self.events.append(dict(event))

    async def aclose(self) -> None:
        self.closed = True


def _codes(doc: Mapping[str, Any]) -> set[str]:
    codes = doc.get("codes")
    if codes is None:
        codes = [a.get("code") for a in doc.get("anomalies", []) if isinstance(a, Mapping)]
    return {str(c) for c in codes}


class MemoryStore:
    """Incident memory in a dict: the latest document of every incident, in the order first seen."""

    def __init__(self) -> None:
        self.incidents: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.recorded = 0

    async def record(self, event: EventDoc) -> None:
        inc = event.get("incident")
        if not isinstance(inc, Mapping) or "id" not in inc:
            raise MemoryBackendError("an incident event carries its incident document")
        self.incidents[str(inc["id"])] = dict(inc)
        self.events.append(dict(event))
        self.recorded += 1

    async def recall(self, query: str = "", *, incident: IncidentDoc | None = None, target: str | None = None,
                     engine: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        docs = [d for d in self.incidents.values() if (target is None or d.get("target") == target)
                and (engine is None or d.get("engine") == engine)]
        scored: list[tuple[float, float, dict[str, Any]]] = []
        if incident is not None:
            mine = _codes(incident)
            for d in docs:
                if d.get("id") == incident.get("id"):
                    continue
                other = _codes(d)
                overlap = len(mine & other) / max(1, len(mine | other))
                if overlap >= 0.5:
                    scored.append((overlap, float(d.get("opened_at") or 0.0), d))
        elif query:
            words = set(re.findall(r"\w+", query.lower()))
            for d in docs:
                text = " ".join([*_codes(d), str((d.get("diagnosis") or {}).get("root_cause", "")),
                                 *(str(a.get("summary", "")) for a in d.get("anomalies", []))]).lower()
                hit = sum(1 for w in words if w in text) / max(1, len(words))
                if hit > 0:
                    scored.append((hit, float(d.get("opened_at") or 0.0), d))
        else:
            scored = [(1.0, float(d.get("opened_at") or 0.0), d) for d in docs]
        scored.sort(key=lambda x: (-x[0], -x[1]))
        return [{**d, "score": round(score, 4)} for score, _, d in scored[:limit]]

    async def aclose(self) -> None:
        pass


class ReplaySource:
    """Serves recorded scrapes, in order, to whoever asks for their target (others get a ``connect``
    failure once the recording for them runs out)."""

    def __init__(self, scrapes: Iterable[Scrape]) -> None:
        self._by_target: dict[str, deque[Scrape]] = {}
        for s in scrapes:
            self._by_target.setdefault(s.target, deque()).append(s)

    async def scrape(self, target: Target) -> Scrape:
        queue = self._by_target.get(target.url)
        if not queue:
            return Scrape(target=target.url, ts=0.0, error="connect")
        return queue.popleft()

    async def aclose(self) -> None:
        self._by_target.clear()


class FakeClock:
    """``clock()`` returns ``now``; ``advance(s)`` moves it."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
