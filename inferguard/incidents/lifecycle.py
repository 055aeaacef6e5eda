"""Fold findings on one target into one incident: open → updated → resolved, with flap damping.

The policies (docs/detectors.md, "Incidents"): one incident per problem — a resolved incident reopens
only for trouble that shares an anomaly code with it, and a target that was never reachable is an
``endpoint_unreachable`` incident of its own; the incident's severity is the highest level its anomalies
sustained (each anomaly's severity already has its own persistence, inferguard/detectors/persistence.py),
so it only ever escalates; its diagnosis is the best-supported one (incidents/diagnosis.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from inferguard.incidents.diagnosis import adopt
from inferguard.models import SEVERITY_RANK, Finding

EventKind = Literal["opened", "updated", "reopened", "resolved"]
# Target-level codes: they say the engine cannot be seen, not what is wrong inside it.
_REACHABILITY = frozenset({"endpoint_unreachable", "engine_unidentified"})
# An incident's story and its diagnosis history keep their first entry and the newest ones: an incident
# open for weeks must not grow without bound (a post-mortem has the whole story in incident memory).
MAX_EVENTS = 500
MAX_DIAGNOSES = 100


@dataclass(slots=True)
class Anomaly:
    code: str
    model: str
    severity: str
    summary: str
    since: float
    evidence: list[dict[str, Any]]
    active: bool = True
    cleared_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "model": self.model, "severity": self.severity, "active": self.active,
                "summary": self.summary, "since": self.since, "cleared_at": self.cleared_at,
                "evidence": self.evidence}


@dataclass(slots=True)
class Incident:
    id: str
    fingerprint: str
    target: str
    engine: str
    model: str
    opened_at: float
    updated_at: float
    severity: str = "warning"
    peak_severity: str = "warning"
    resolved_at: float | None = None
    anomalies: dict[tuple[str, str], Anomaly] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    synthetic: bool = False
    flaps: int = 0
    quiet_streak: int = 0
    diagnosis: dict[str, Any] | None = None
    advisories: list[dict[str, Any]] = field(default_factory=list)
    # The incident's story for a post-mortem: every diagnosis it was given, in order (adopted or not)...
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    # ...and every lifecycle event: {ts, kind, severity (the incident's, after the event), changes}.
    events: list[dict[str, Any]] = field(default_factory=list)
    # Opened while its target had never answered since the watcher started: start-up, not a crash.
    never_reachable: bool = False
    # The anomaly codes the incident had when its present diagnosis was adopted.
    diagnosed_codes: frozenset[str] = frozenset()
    # Actions taken through the actuation webhook and whether they worked ("did the fix work").
    actions: list[dict[str, Any]] = field(default_factory=list)
    # Entries of ``events`` and ``diagnoses`` let go past their caps (MAX_EVENTS, MAX_DIAGNOSES).
    dropped: int = 0

    def apply_diagnosis(self, ts: float, diagnosis: dict[str, Any] | None,
                        advisories: list[dict[str, Any]], source: str) -> bool:
        """The one place a brain answer lands on an incident. True when what a person reads changed.

        The incident keeps the best-supported diagnosis of its life (incidents/diagnosis.py); every
        answer, adopted or not, goes into ``diagnoses``.
        """
        if diagnosis is None:
            return False
        codes = frozenset(a.code for a in self.anomalies.values())
        adopted = adopt(self.diagnosis, diagnosis, resolved=self.resolved_at is not None,
                        new_evidence=bool(codes - self.diagnosed_codes))
        changed = adopted and (diagnosis != self.diagnosis or list(advisories) != self.advisories)
        if adopted:
            self.diagnosis, self.advisories, self.diagnosed_codes = diagnosis, list(advisories), codes
        last = self.diagnoses[-1] if self.diagnoses else None
        entry = {"ts": ts, "root_cause": diagnosis.get("root_cause"), "confidence": diagnosis.get("confidence"),
                 "source": source, "adopted": adopted}
        if last is None or (last["root_cause"], last["confidence"], last["source"], last["adopted"]) != (
                entry["root_cause"], entry["confidence"], entry["source"], entry["adopted"]):
            self.diagnoses.append(entry)
            self._cap(self.diagnoses, MAX_DIAGNOSES)
        return changed

    def _cap(self, entries: list[dict[str, Any]], limit: int) -> None:
        if len(entries) > limit:
            del entries[1]  # the first (the opening) stays; the oldest after it goes
            self.dropped += 1

    def record(self, ts: float, kind: EventKind, changes: tuple[str, ...]) -> IncidentEvent:
        """Append a lifecycle event to the incident's story and return it for the sinks."""
        self.events.append({"ts": ts, "kind": kind, "severity": self.severity, "changes": list(changes)})
        self._cap(self.events, MAX_EVENTS)
        return IncidentEvent(kind, self, changes, ts)

    def record_action(self, entry: dict[str, Any]) -> None:
        """The one place an actuation outcome (sent, failed, verified) lands on an incident."""
        keep = ("ts", "outcome", "action", "key", "reason", "verification", "signals_verdict", "signals", "probe")
        self.actions.append({k: entry[k] for k in keep if k in entry})

    @property
    def status(self) -> str:
        return "resolved" if self.resolved_at is not None else "open"

    def active_codes(self) -> list[str]:
        return sorted({a.code for a in self.anomalies.values() if a.active})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "fingerprint": self.fingerprint, "target": self.target, "engine": self.engine,
            "model": self.model, "severity": self.severity, "peak_severity": self.peak_severity,
            "status": self.status, "synthetic": self.synthetic, "labels": dict(self.labels),
            "codes": sorted({a.code for a in self.anomalies.values()}),
            "anomalies": [a.to_dict() for a in self.anomalies.values()],
            "opened_at": self.opened_at, "updated_at": self.updated_at, "resolved_at": self.resolved_at,
            "flaps": self.flaps, "diagnosis": self.diagnosis, "advisories": list(self.advisories),
            "diagnoses": [dict(d) for d in self.diagnoses],
            "events": [{**e, "changes": list(e["changes"])} for e in self.events],
            "actions": list(self.actions), "dropped": self.dropped,
            # Restart state: what a restored incident needs to judge its next diagnosis and its start-up.
            "diagnosed_codes": sorted(self.diagnosed_codes), "never_reachable": self.never_reachable,
        }


def incident_from_dict(doc: Mapping[str, Any]) -> Incident:
    """Rebuild an Incident from its ``to_dict()`` (a restart restoring open incidents from memory)."""
    inc = Incident(id=str(doc["id"]), fingerprint=str(doc["fingerprint"]), target=str(doc["target"]),
                   engine=str(doc.get("engine") or "unknown"), model=str(doc.get("model") or ""),
                   opened_at=float(doc["opened_at"]), updated_at=float(doc.get("updated_at") or doc["opened_at"]),
                   severity=str(doc.get("severity") or "warning"),
                   peak_severity=str(doc.get("peak_severity") or doc.get("severity") or "warning"),
                   resolved_at=None if doc.get("resolved_at") is None else float(doc["resolved_at"]),
                   labels={str(k): str(v) for k, v in (doc.get("labels") or {}).items()},
                   synthetic=bool(doc.get("synthetic")), flaps=int(doc.get("flaps") or 0),
                   diagnosis=doc.get("diagnosis"), advisories=list(doc.get("advisories") or []),
                   diagnoses=list(doc.get("diagnoses") or []), events=list(doc.get("events") or []),
                   actions=list(doc.get("actions") or []),
                   diagnosed_codes=frozenset(str(c) for c in doc.get("diagnosed_codes") or ()),
                   never_reachable=bool(doc.get("never_reachable")), dropped=int(doc.get("dropped") or 0))
    for a in doc.get("anomalies") or []:
        anomaly = Anomaly(str(a["code"]), str(a.get("model") or ""), str(a.get("severity") or "warning"),
                          str(a.get("summary") or ""), float(a.get("since") or inc.opened_at),
                          list(a.get("evidence") or []), bool(a.get("active", True)), a.get("cleared_at"))
        inc.anomalies[(anomaly.code, anomaly.model)] = anomaly
    return inc


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    kind: EventKind
    incident: Incident
    changes: tuple[str, ...] = ()
    ts: float | None = None

    @property
    def notifies(self) -> bool:
        """Worth telling a person: opened, reopened, resolved, or the incident's severity rose."""
        return self.kind != "updated" or any(c.startswith("severity ") for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        ts = self.incident.updated_at if self.ts is None else self.ts
        return {"event": f"incident.{self.kind}", "ts": ts, "changes": list(self.changes),
                "incident": self.incident.to_dict()}


def fingerprint(target: str, model: str, codes: Iterable[str]) -> str:
    """Stable across the incident's life: what opened it, where."""
    key = "|".join([target, model, *sorted(set(codes))])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class IncidentBook:
    """Every incident, by target. One open incident per target at a time."""

    def __init__(self, *, resolve_after: int = 2, reopen_within_s: float = 180.0,
                 keep_resolved: int | None = None) -> None:
        """``keep_resolved``: how many resolved incidents ``history`` keeps (the newest; open ones always
        stay). None keeps all — ``replay`` and ``demo`` report every incident; the daemon, which runs for
        months and has incident memory for the rest, keeps a bounded number."""
        self.resolve_after = resolve_after
        self.keep_resolved = keep_resolved
        self.reopen_within_s = reopen_within_s
        self._open: dict[str, Incident] = {}
        self._last_resolved: dict[str, Incident] = {}
        self._reached: set[str] = set()  # targets that answered at least once
        self.history: list[Incident] = []
        self._by_id: dict[str, Incident] = {}  # late answers find their incident without a scan

    def _remember(self, inc: Incident) -> None:
        self.history.append(inc)
        self._by_id.setdefault(inc.id, inc)  # the first of a (same-second) id, as a scan would find
        keep = self.keep_resolved
        if keep is not None and len(self.history) > 2 * keep + len(self._open):  # in batches: O(1) amortised
            resolved = [i for i in self.history if i.resolved_at is not None]
            gone = {id(i) for i in resolved[:len(resolved) - keep]}
            self.history = [i for i in self.history if id(i) not in gone]
            self._by_id = {}
            for i in self.history:
                self._by_id.setdefault(i.id, i)

    def open_incidents(self) -> list[Incident]:
        return list(self._open.values())

    def adopt(self, incident: Incident) -> bool:
        """Take back an open incident remembered before a restart: it stays the same incident (same id,
        no new "opened" event). False when its target already has an open incident here."""
        if incident.resolved_at is not None or incident.target in self._open:
            return False
        self._open[incident.target] = incident
        self._remember(incident)
        return True

    def get(self, incident_id: str) -> Incident | None:
        return self._by_id.get(incident_id)

    def update(
        self,
        target: str,
        ts: float,
        findings: list[Finding],
        *,
        engine: str,
        model: str,
        labels: Mapping[str, str] | None = None,
        synthetic: bool = False,
        reachable: bool | None = None,
    ) -> list[IncidentEvent]:
        """Fold one evaluation of a target. ``reachable``: did this scrape answer (None: not known)."""
        codes = {f.code for f in findings}
        if reachable or (reachable is None and findings and not codes & _REACHABILITY):
            self._reached.add(target)
        inc = self._open.get(target)
        if inc is None:
            if not findings:
                return []
            return [self._open_or_reopen(target, ts, findings, engine, model, labels, synthetic)]
        changes = self._apply(inc, ts, findings)
        if engine != "unknown":
            inc.engine = engine
        if not inc.model:  # a start-up incident names its model once the engine answers
            inc.model = next((f.model for f in findings if f.model), "")
        if not findings:
            inc.quiet_streak += 1
            if inc.quiet_streak >= self.resolve_after:
                inc.resolved_at = inc.updated_at = ts
                del self._open[target]
                self._last_resolved[target] = inc
                return [inc.record(ts, "resolved", ("all anomalies cleared",))]
        else:
            inc.quiet_streak = 0
        if changes:
            inc.updated_at = ts
            return [inc.record(ts, "updated", tuple(changes))]
        return []

    def _reopens(self, prev: Incident | None, ts: float, findings: list[Finding]) -> bool:
        """Flap damping may glue the same trouble together, never different troubles."""
        if prev is None or prev.resolved_at is None or ts - prev.resolved_at > self.reopen_within_s:
            return False
        if prev.never_reachable:
            return False  # the start-up wait is its own story; whatever follows is news
        return bool({f.code for f in findings} & {a.code for a in prev.anomalies.values()})

    def _open_or_reopen(self, target: str, ts: float, findings: list[Finding], engine: str, model: str,
                        labels: Mapping[str, str] | None, synthetic: bool) -> IncidentEvent:
        prev = self._last_resolved.get(target)
        if prev is not None and self._reopens(prev, ts, findings):
            # Flap damping: the same trouble back within minutes is the same incident, not a new page.
            prev.resolved_at = None
            prev.flaps += 1
            prev.quiet_streak = 0
            self._open[target] = prev
            changes = [f"reopened (flap {prev.flaps})", *self._apply(prev, ts, findings)]
            prev.updated_at = ts
            return prev.record(ts, "reopened", tuple(changes))
        first_model = next((f.model for f in findings if f.model), model)
        codes = {f.code for f in findings}
        never_reachable = target not in self._reached and codes <= _REACHABILITY
        if never_reachable:
            first_model = ""  # nothing has named a model yet; do not borrow one
        fp = fingerprint(target, first_model, codes)
        inc = Incident(id=f"inc-{fp[:10]}-{int(ts)}", fingerprint=fp, target=target, engine=engine,
                       model=first_model, opened_at=ts, updated_at=ts, labels=dict(labels or {}),
                       synthetic=synthetic, never_reachable=never_reachable)
        self._apply(inc, ts, findings, fresh=True)
        self._open[target] = inc
        self._remember(inc)
        return inc.record(ts, "opened", tuple(f"+{c}" for c in inc.active_codes()))

    @staticmethod
    def _apply(inc: Incident, ts: float, findings: list[Finding], *, fresh: bool = False) -> list[str]:
        changes: list[str] = []
        seen = set()
        for f in findings:
            key = (f.code, f.model)
            seen.add(key)
            evidence = [e.to_dict() for e in f.evidence]
            a = inc.anomalies.get(key)
            if a is None or not a.active:
                inc.anomalies[key] = Anomaly(f.code, f.model, f.severity, f.summary, f.ts, evidence)
                changes.append(f"+{f.code}")
            else:
                if a.severity != f.severity:
                    changes.append(f"{f.code}: {a.severity}->{f.severity}")
                a.severity, a.summary, a.evidence = f.severity, f.summary, evidence
        for key, a in inc.anomalies.items():
            if a.active and key not in seen:
                a.active, a.cleared_at = False, ts
                changes.append(f"-{a.code}")
        active = [a.severity for a in inc.anomalies.values() if a.active]
        if active:
            # Each anomaly's severity already held for its own persistence before it reached us: the
            # incident takes the highest of them and keeps it (it escalates, it never flaps back down).
            sev = max(active, key=SEVERITY_RANK.__getitem__)
            if fresh:
                inc.severity = inc.peak_severity = sev
            elif SEVERITY_RANK[sev] > SEVERITY_RANK[inc.severity]:
                changes.append(f"severity {inc.severity}->{sev}")
                inc.severity = inc.peak_severity = sev
        return changes
