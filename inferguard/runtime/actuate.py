"""Actuation driven by incident events: the same steps in ``watch`` and in ``replay --notify``.

Each advisory of an open incident is offered once (per incident and action) to the actuator, which
gates, audits and (live only) sends it; a sent or failed action lands on the incident. ``tick`` runs
the verification of live actions whose delay has passed, against the newest signals and (when the
daemon has a canary probe) one probe of the target, and lands the outcome on the incident too. In the
daemon this is a sink of the fan-out (its own queue and task), so a slow actuation webhook never delays
a scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from inferguard.pipeline import Pipeline
from inferguard.protocols import EventDoc
from inferguard.runtime.probing import ProbeRun

# Lands an actuation outcome on the incident with that id (Incident.record_action); a no-op when gone.
Record = Callable[[str, dict[str, Any]], None]
SignalReader = Callable[[str, str], Mapping[str, float] | None]


class Acting(Protocol):
    """What is needed of the actuator: WebhookActuator's decision and verification verbs."""

    async def act(self, advisory: Mapping[str, Any], incident: Mapping[str, Any]) -> dict[str, Any]: ...

    async def verify_due(self, read: SignalReader, probe: ProbeRun | None = None) -> list[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


def latest_reader(pipeline: Pipeline) -> SignalReader:
    """The verification scrape: the newest canonical signals the pipeline holds for (target, model)."""
    def read(target: str, model: str) -> dict[str, float] | None:
        s = pipeline.latest().get(target, {}).get(model)
        return None if s is None else dict(s.values)

    return read


def book_recorder(pipeline: Pipeline) -> Record:
    def record(incident_id: str, entry: dict[str, Any]) -> None:
        inc = pipeline.book.get(incident_id)
        if inc is not None:
            inc.record_action(entry)

    return record


class ActuationLane:
    """A :class:`~inferguard.protocols.Sink` (name ``actuation``) with a clock-driven ``tick``. ``probe``
    (injected by runtime/build.py from the daemon's probes) joins each verification; None: signals only."""

    name = "actuation"

    def __init__(self, actuator: Acting, record: Record, read: SignalReader, probe: ProbeRun | None = None) -> None:
        self.actuator = actuator
        self.record = record
        self.read = read
        self.probe = probe
        self.offered: set[tuple[str, str]] = set()
        self.decisions = 0

    async def send(self, event: EventDoc) -> None:
        inc = event.get("incident") or {}
        iid = str(inc.get("id", ""))
        if str(event.get("event", "")).removeprefix("incident.") == "resolved":
            self.offered = {k for k in self.offered if k[0] != iid}  # bounded: forget a closed incident
            return
        for adv in inc.get("advisories") or []:
            key = (iid, str(adv.get("action")))
            if key in self.offered:
                continue
            self.offered.add(key)
            entry = await self.actuator.act(adv, inc)
            self.decisions += 1
            if entry["outcome"] in ("sent", "failed"):
                self.record(iid, entry)

    async def tick(self) -> None:
        for entry in await self.actuator.verify_due(self.read, self.probe):
            self.record(str(entry["incident"]), entry)

    async def aclose(self) -> None:
        await self.actuator.aclose()
