"""The brain stage: one door for every diagnosis.

It takes an incident (its IncidentDoc, its signals window and similar past incidents), builds the
payload ONCE, returns the rules' answer at once as a typed :class:`DiagnosisUpdate`, and hands the
same payload (and the same rules answer) to the LLM or the remote brain in the background; that
refinement comes back later as another :class:`DiagnosisUpdate` through ``deliver``. The caller
applies every update in one place (``Incident.apply_diagnosis``). Proactive W1–W4 investigations of
healthy targets go through here too. The stage imports no other stage: documents in, updates out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inferguard.errors import InferGuardError

from .client import BackgroundBrain, Brain
from .payloads import Advisory, Answer, Diagnosis, build_incident_payload, build_proactive_payload


@dataclass(frozen=True, slots=True)
class DiagnosisUpdate:
    """One brain answer for one incident, ready to apply. ``change`` is the text the incident's
    ``updated`` event carries (``diagnosis:llm``, ``diagnosis:rules (llm_timeout)``)."""

    incident_id: str
    diagnosis: Diagnosis
    advisories: list[Advisory]
    source: str
    change: str

    @classmethod
    def of(cls, incident_id: str, answer: Answer) -> DiagnosisUpdate:
        d = answer["diagnosis"]
        why = d.get("fallback_reason")
        change = f"diagnosis:{d['source']}" + (f" ({why})" if why else "")
        return cls(incident_id, d, list(answer["advisories"]), str(d["source"]), change)


Deliver = Callable[[DiagnosisUpdate], Awaitable[None] | None]
OnProactive = Callable[[str, str, Answer], None]


class BrainStage:
    def __init__(self, brain: Brain, *, max_in_flight: int = 2, max_queued: int = 64) -> None:
        self.brain = brain
        self.background = BackgroundBrain(brain, max_in_flight=max_in_flight)
        self.max_queued = max_queued
        self.errors = 0
        self.last_error: str | None = None
        # `replay --payloads` keeps every incident payload the stage built, for `rlm-agent advise`.
        self.payloads: list[dict[str, Any]] | None = None

    @property
    def failures(self) -> int:
        """Brain calls that failed (payload building and background calls alike)."""
        return self.errors + self.background.failures

    def _failed(self, exc: InferGuardError) -> None:
        self.errors += 1
        self.last_error = str(exc)[:300]

    def advise(self, incident: Mapping[str, Any], window: Sequence[Mapping[str, Any]],
               similar: Sequence[Mapping[str, Any]], deliver: Deliver | None = None) -> DiagnosisUpdate | None:
        """The rules' update now (None when the brain is remote or the payload is bad); with ``deliver``
        and a refining brain, the refinement later. Must run inside the event loop when it refines."""
        try:
            payload = build_incident_payload(incident, window, similar)
            if self.payloads is not None:
                self.payloads.append(dict(payload))
            rules = self.brain.rules(payload)
        except InferGuardError as exc:
            self._failed(exc)
            return None
        incident_id = payload["incident"]["id"]
        if deliver is not None and self.brain.refines:
            self.background.submit(incident_id, payload, lambda a: deliver(DiagnosisUpdate.of(incident_id, a)),
                                   rules=rules)
        return None if rules is None else DiagnosisUpdate.of(incident_id, rules)

    @property
    def busy(self) -> bool:
        """The background queue is full: an investigation now would be skipped (ask before gathering)."""
        return self.background.in_flight >= self.max_queued

    def investigate(self, target: str, engine: str, model: str, window: Sequence[Mapping[str, Any]],
                    similar: Sequence[Mapping[str, Any]], on_answer: OnProactive, *, synthetic: bool = False) -> bool:
        """Start a proactive investigation in the background; False when skipped (a slow brain, a bad
        payload)."""
        if self.busy:
            return False  # never pile work on a slow brain
        try:
            payload = build_proactive_payload(target, engine, model, window, similar, synthetic=synthetic)
        except InferGuardError as exc:
            self._failed(exc)
            return False
        self.background.submit(f"proactive:{target}", payload, lambda a: on_answer(target, model, a),
                               kind="investigate")
        return True

    async def aclose(self) -> None:
        await self.background.aclose()
