"""What a restart must not forget: open incidents and the detectors' learned state, kept in the
StateStore and taken back at start, so a restarted daemon neither forgets nor re-pages.

Saved as two documents at every incident event, every ``every_s`` seconds and at a clean stop:
``incidents.open`` (IncidentDocs) and ``detectors`` (``DetectorBank.export_state()``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from inferguard.incidents import incident_from_dict
from inferguard.pipeline import Pipeline
from inferguard.protocols import StateStore

OPEN_KEY = "incidents.open"
DETECTORS_KEY = "detectors"


async def restore(store: StateStore, pipeline: Pipeline, targets: Iterable[str]) -> dict[str, int]:
    """Adopt the remembered open incidents of the watched targets and import the detectors' state.
    A ConfigError (bad credentials) propagates; a backend that fails is a MemoryBackendError."""
    watched = set(targets)
    restored = {"incidents": 0, "detector_entries": 0, "skipped": 0}
    detectors = await store.load(DETECTORS_KEY)
    if detectors:
        restored["detector_entries"] = pipeline.bank.import_state(detectors)
    doc = await store.load(OPEN_KEY) or {}
    for raw in doc.get("incidents") or []:
        try:
            inc = incident_from_dict(raw)
        except (KeyError, TypeError, ValueError):
            restored["skipped"] += 1
            continue
        if inc.target in watched and pipeline.book.adopt(inc):
            restored["incidents"] += 1
        else:
            restored["skipped"] += 1
    return restored


class Checkpoint:
    """Saves the restart state when an incident changed, or every ``every_s`` seconds."""

    def __init__(self, store: StateStore, pipeline: Pipeline, *, clock: Callable[[], float],
                 every_s: float = 30.0) -> None:
        self.store, self.pipeline, self.clock, self.every_s = store, pipeline, clock, every_s
        self._last = clock()
        self.saves = 0

    async def maybe(self, changed: bool) -> None:
        if changed or self.clock() - self._last >= self.every_s:
            await self.save()

    async def save(self) -> None:
        self._last = self.clock()
        open_docs: list[dict[str, Any]] = [i.to_dict() for i in self.pipeline.book.open_incidents()]
        await self.store.save(OPEN_KEY, {"incidents": open_docs})
        await self.store.save(DETECTORS_KEY, self.pipeline.bank.export_state())
        self.saves += 1


