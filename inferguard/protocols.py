"""The stage protocols plugin authors may implement. One or two verbs each, plus ``aclose``.

Everything that leaves the pipeline travels as plain JSON-able documents — the very dicts the JSON log
lines and the API carry — so sinks, stores, probes and actuators never import a stage:

``EventDoc``      ``{"event": "incident.opened|updated|reopened|resolved", "ts": float, "changes": [str, ...],
                  "incident": IncidentDoc}`` (``IncidentEvent.to_dict()``)
``IncidentDoc``   ``Incident.to_dict()``: id, fingerprint, target, engine, model, severity, status,
                  anomalies, opened_at, resolved_at, diagnosis, advisories, events, diagnoses, ...

A backend that fails raises the matching error of :mod:`inferguard.errors` (``MemoryBackendError``,
``SinkError``, ``ActuationError``); the caller logs it, counts it and keeps the loop running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from inferguard.models import Scrape, Target

EventDoc = Mapping[str, Any]
IncidentDoc = Mapping[str, Any]
# ``{"target": url, "name": str, "engine": str, "down": bool, "failure": str, "failure_short": str,
#   "models": {model: {"ts": float, "values": {signal: float}}}}`` (``failure``: the last scrape failure,
#   described, while the target fails)
TargetDoc = dict[str, Any]


@runtime_checkable
class Source(Protocol):
    """Produces a Scrape for a target; failures are a Scrape with a typed ``error``, never an exception."""

    async def scrape(self, target: Target) -> Scrape: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Hears every incident event, in order, off the scrape loop (its own queue and task).

    ``send`` may be slow (network); raising ``SinkError`` asks the dispatcher to retry later.
    A sink decides for itself what is worth passing on (notification sinks: once per change).
    """

    name: str

    async def send(self, event: EventDoc) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CycleStatus:
    """The daemon's state after one cycle. The two views are computed only when called, so a listener
    pays only for what it reads (the API read model reads them per request, the live view per cycle)."""

    ts: float
    cycles: int
    open_incidents: Callable[[], list[dict[str, Any]]]
    targets: Callable[[], list[TargetDoc]]
    # {"failures": int, "last_error": str | None, "proactive": {target: answer}}: what the brain did.
    # Required: a default here once let the daemon drop it silently, and the live view went blind.
    brain: Callable[[], dict[str, Any]]


@runtime_checkable
class StatusListener(Protocol):
    """A sink that also hears the end of every cycle (the terminal view, the API read model).
    ``status`` runs on the loop: it must be quick and must not block."""

    def status(self, status: CycleStatus) -> None: ...


@runtime_checkable
class IncidentStore(Protocol):
    """Incident memory: remembers every incident event and recalls similar past incidents.

    ``record`` is idempotent on (incident id, event ts, event kind): a replayed spool never duplicates.
    ``recall`` answers a free-text ``query`` (BM25 or a vector index) or, with ``incident`` given, the
    incidents most like that one (numeric fingerprint); results are IncidentDocs with a ``score``.
    """

    async def record(self, event: EventDoc) -> None: ...

    async def recall(self, query: str = "", *, incident: IncidentDoc | None = None, target: str | None = None,
                     engine: str | None = None, limit: int = 5) -> list[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class StateStore(Protocol):
    """Small named JSON documents the daemon keeps across restarts (open incidents, baselines,
    notification and actuation state). ``load`` returns None for a key never saved."""

    async def save(self, key: str, doc: Mapping[str, Any]) -> None: ...

    async def load(self, key: str) -> dict[str, Any] | None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Probe(Protocol):
    """A user-side canary: one real request to the engine's API, measured.

    Returns ``{"ok": bool, "status": int|None, "ttft_s": float|None, "tpot_s": float|None,
    "tokens": int, "error": str|None, "ran": bool}``; ``ran`` is False when no measurement was made.
    """

    async def probe(self, target: Target) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Actuator(Protocol):
    """Decides on and (only when allowed) performs an advisory's action through the operator's webhook.

    ``act`` never raises for a refusal: it returns the audited decision
    ``{"outcome": "denied|dry_run|sent|failed", "reason": str, "action": str, "incident": id, ...}``.
    """

    async def act(self, advisory: Mapping[str, Any], incident: IncidentDoc) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...
