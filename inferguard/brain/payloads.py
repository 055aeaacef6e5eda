"""The brain wire format, typed: the only inferguard module that knows it.

Builds the versioned payload dicts sent to the brain (``rlm_agent`` in-process or ``rlm-agent serve``
over HTTP) and reads the answers that come back. Everything here is plain Python over TypedDicts:
no JSON Schema and no file of ``rlm_agent`` is read at run time. A payload built here is valid by
construction (numbers finite, codes from the vocabulary, strings bounded); the full JSON Schema check
runs once at the process boundary (``rlm-agent serve``, or ``rlm_agent`` on the LLM path) and in the
tests, which also pin the vocabulary below to the schemas the brain publishes
(tests/brain/test_vocab.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict

from inferguard.errors import PayloadError
from inferguard.models import ANOMALY_CODES, ENGINES, SIGNALS

SCHEMA_VERSION = "1.0"
MAX_WINDOW = 600  # samples; the schema allows 2000, the brain needs minutes, not hours
MAX_SIMILAR = 20

# The answer vocabulary InferGuard understands; equal to the enums of the brain's answer schema.
ROOT_CAUSES = ("kv_cache_exhaustion", "admission_overload", "prefill_bottleneck", "decode_bottleneck",
               "prefix_cache_thrash", "cpu_swap_thrash", "error_burst", "engine_down", "engine_restarted",
               "gpu_fault", "insufficient_evidence")
ACTIONS = ("recommend_compaction", "throttle_concurrency", "flush_session_radix", "drain_and_recycle",
           "quarantine_shape", "shrink_speculation_window", "raise_batch_capacity", "scale_out")
CLAIM_STATUSES = ("measured", "inferred", "not_proven", "synthetic")
HORIZONS = ("now", "minutes", "hours")
SOURCES = ("rules", "llm")
SEVERITIES = ("warning", "critical")
STATUSES = ("open", "resolved")
_ENGINES = frozenset(ENGINES)
_CODES = frozenset(ANOMALY_CODES)


# -- payload ---------------------------------------------------------------------------------------
class Sample(TypedDict):
    ts: float
    values: dict[str, float]


class PayloadEvidence(TypedDict):
    signal: str
    value: float | None
    threshold: float | None
    op: str
    note: str


class PayloadAnomaly(TypedDict):
    code: str
    severity: str
    active: bool
    summary: str
    since: float
    cleared_at: float | None
    evidence: list[PayloadEvidence]


class PayloadIncident(TypedDict):
    id: str
    fingerprint: str
    target: str
    engine: str
    model: str
    severity: str
    status: str
    synthetic: bool
    opened_at: float
    updated_at: float
    resolved_at: float | None
    labels: dict[str, str]
    anomalies: list[PayloadAnomaly]


class Similar(TypedDict):
    id: str
    fingerprint: str | None
    target: str | None
    codes: list[str]
    root_cause: str | None
    opened_at: float
    resolved_at: float | None
    score: float | None


class IncidentPayload(TypedDict):
    schema_version: str
    kind: Literal["incident"]
    target: str
    engine: str
    model: str
    synthetic: bool
    redacted: bool
    labels: dict[str, str]
    incident: PayloadIncident
    window: list[Sample]
    similar: list[Similar]


class ProactivePayload(TypedDict):
    schema_version: str
    kind: Literal["proactive"]
    target: str
    engine: str
    model: str
    synthetic: bool
    window: list[Sample]
    similar: list[Similar]


Payload = IncidentPayload | ProactivePayload


# -- answer ----------------------------------------------------------------------------------------
class AnswerEvidence(TypedDict):
    signal: str
    value: float | None
    note: str


class Diagnosis(TypedDict):
    root_cause: str
    summary: str
    evidence: list[AnswerEvidence]
    confidence: float
    claim_status: str
    source: str
    fallback_reason: str | None


class Advisory(TypedDict):
    action: str
    advisory_only: Literal[True]
    confidence: float
    horizon: str
    rationale: str
    parameters: dict[str, Any]
    engine_steps: list[str]
    evidence: list[AnswerEvidence]
    proactive: NotRequired[bool]


class Answer(TypedDict):
    schema_version: str
    diagnosis: Diagnosis
    advisories: list[Advisory]
    llm: NotRequired[dict[str, Any]]
    investigation: NotRequired[dict[str, Any]]


# -- building --------------------------------------------------------------------------------------
def _number(value: Any, where: str) -> float | None:
    """A finite float, or None for a missing/NaN value (unknown); anything else is an error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{where}: expected a number, got {type(value).__name__}")
    f = float(value)
    return f if math.isfinite(f) else None


def _time(value: Any, where: str) -> float:
    f = _number(value, where)
    if f is None:
        raise PayloadError(f"{where}: not a finite number")
    return f


def _one_of(value: Any, allowed: Sequence[str] | frozenset[str], where: str) -> str:
    if value not in allowed:
        raise PayloadError(f"brain payload invalid at {where}: {str(value)[:60]!r} is not one of the vocabulary")
    return str(value)


def _text(value: Any, limit: int) -> str:
    return str(value)[:limit]


def _window(window: Sequence[Mapping[str, Any]]) -> list[Sample]:
    if not isinstance(window, Sequence) or isinstance(window, str | bytes):
        raise PayloadError("window: expected a list of {ts, values}")
    out: list[Sample] = []
    for i, sample in enumerate(window[-MAX_WINDOW:]):
        if not isinstance(sample, Mapping) or "ts" not in sample or not isinstance(sample.get("values"), Mapping):
            raise PayloadError(f"window[{i}]: expected {{'ts': float, 'values': {{signal: float}}}}")
        ts = _time(sample["ts"], f"window[{i}].ts")
        values: dict[str, float] = {}
        for name, value in sample["values"].items():
            v = _number(value, f"window[{i}].values.{name}")
            # Only canonical signals cross the wire; a NaN is unknown, so it is left out, never 0.
            if v is not None and name in SIGNALS:
                values[name] = v
        out.append({"ts": ts, "values": values})
    out.sort(key=lambda s: s["ts"])
    return out


def _similar(similar: Sequence[Mapping[str, Any]]) -> list[Similar]:
    out: list[Similar] = []
    for i, past in enumerate(similar[:MAX_SIMILAR]):
        if not isinstance(past, Mapping) or "id" not in past:
            raise PayloadError(f"similar[{i}]: expected an incident summary with an id")
        codes = past.get("codes")
        if codes is None:
            codes = [a.get("code") for a in past.get("anomalies", []) if isinstance(a, Mapping)]
        diagnosis = past.get("diagnosis") if isinstance(past.get("diagnosis"), Mapping) else None
        root = past.get("root_cause") or (diagnosis or {}).get("root_cause")
        opened = _number(past.get("opened_at"), f"similar[{i}].opened_at")
        out.append({
            "id": _text(past["id"], 256),
            "fingerprint": None if past.get("fingerprint") is None else _text(past["fingerprint"], 256),
            "target": None if past.get("target") is None else _text(past["target"], 2048),
            "codes": sorted({str(c) for c in codes if c in _CODES}),
            "root_cause": root if root in ROOT_CAUSES else None,
            "opened_at": opened if opened is not None else 0.0,
            "resolved_at": _number(past.get("resolved_at"), f"similar[{i}].resolved_at"),
            "score": _number(past.get("score"), f"similar[{i}].score"),
        })
    return out


_REQUIRED = ("id", "fingerprint", "target", "engine", "model", "severity", "status", "synthetic",
             "opened_at", "updated_at", "anomalies")


def _evidence(e: Mapping[str, Any], where: str) -> PayloadEvidence:
    return {"signal": _text(e.get("signal", ""), 128), "value": _number(e.get("value"), f"{where}.value"),
            "threshold": _number(e.get("threshold"), f"{where}.threshold"), "op": _text(e.get("op", ""), 8),
            "note": _text(e.get("note", ""), 1000)}


def _incident(incident: Mapping[str, Any]) -> PayloadIncident:
    if not isinstance(incident, Mapping):
        raise PayloadError(f"incident: expected a dict, got {type(incident).__name__}")
    missing = [k for k in _REQUIRED if k not in incident]
    if missing:
        raise PayloadError(f"incident {incident.get('id', '?')}: missing {', '.join(missing)}")
    anomalies: list[PayloadAnomaly] = []
    for j, a in enumerate(incident["anomalies"]):
        if not isinstance(a, Mapping):
            raise PayloadError(f"incident.anomalies[{j}]: expected a dict")
        anomalies.append({
            "code": _one_of(a.get("code"), _CODES, f"/incident/anomalies/{j}/code"),
            "severity": _one_of(a.get("severity"), SEVERITIES, f"/incident/anomalies/{j}/severity"),
            "active": bool(a.get("active")), "summary": _text(a.get("summary", ""), 2000),
            "since": _time(a.get("since"), f"anomalies[{j}].since"),
            "cleared_at": _number(a.get("cleared_at"), f"anomalies[{j}].cleared_at"),
            "evidence": [_evidence(e, f"anomalies[{j}].evidence") for e in a.get("evidence", [])[:32]
                         if isinstance(e, Mapping)],
        })
    return {
        "id": _text(incident["id"], 256), "fingerprint": _text(incident["fingerprint"], 256),
        "target": _text(incident["target"], 2048),
        "engine": _one_of(incident["engine"], _ENGINES, "/engine"), "model": _text(incident["model"], 512),
        "severity": _one_of(incident["severity"], SEVERITIES, "/incident/severity"),
        "status": _one_of(incident["status"], STATUSES, "/incident/status"),
        "synthetic": bool(incident["synthetic"]),
        "opened_at": _time(incident["opened_at"], "incident.opened_at"),
        "updated_at": _time(incident["updated_at"], "incident.updated_at"),
        "resolved_at": _number(incident.get("resolved_at"), "incident.resolved_at"),
        "labels": {str(k): str(v) for k, v in (incident.get("labels") or {}).items()},
        "anomalies": anomalies,
    }


def build_incident_payload(incident: Mapping[str, Any], window: Sequence[Mapping[str, Any]],
                           similar: Sequence[Mapping[str, Any]]) -> IncidentPayload:
    """The payload for one incident (an IncidentDoc); :class:`PayloadError` names what was wrong."""
    inc = _incident(incident)
    return {
        "schema_version": SCHEMA_VERSION, "kind": "incident", "target": inc["target"], "engine": inc["engine"],
        "model": inc["model"], "synthetic": inc["synthetic"], "redacted": False, "labels": dict(inc["labels"]),
        "incident": inc, "window": _window(window), "similar": _similar(similar),
    }


def build_proactive_payload(target: str, engine: str, model: str, window: Sequence[Mapping[str, Any]],
                            similar: Sequence[Mapping[str, Any]], *, synthetic: bool = False) -> ProactivePayload:
    """The payload for a proactive W1–W4 investigation of one target."""
    return {
        "schema_version": SCHEMA_VERSION, "kind": "proactive", "target": _text(target, 2048),
        "engine": _one_of(engine, _ENGINES, "/engine"), "model": _text(model, 512), "synthetic": bool(synthetic),
        "window": _window(window), "similar": _similar(similar),
    }


# -- reading answers -------------------------------------------------------------------------------
def _bad(where: str, message: str) -> PayloadError:
    return PayloadError(f"brain answer invalid at {where}: {message}"[:400])


def _check_evidence(items: Any, where: str, *, at_least: int = 0) -> None:
    if not isinstance(items, list) or not at_least <= len(items) <= 32:
        raise _bad(where, f"expected a list of {at_least} to 32 evidence items")
    for k, e in enumerate(items):
        if not isinstance(e, dict) or not isinstance(e.get("signal"), str) or not isinstance(e.get("note"), str):
            raise _bad(f"{where}/{k}", "expected {signal, value, note}")
        v = e.get("value")
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
            raise _bad(f"{where}/{k}/value", "expected a finite number or null")


def _confidence(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _bad(where, "expected a number from 0 to 1")


def parse_answer(answer: Any) -> Answer:
    """Check a brain answer that crossed a process boundary; :class:`PayloadError` names the field.

    It checks what InferGuard reads and shows (vocabulary, ranges, the advice-only flag); the brain
    validated its answer against the full schema before sending it.
    """
    if not isinstance(answer, dict):
        raise PayloadError(f"brain answer: expected a JSON object, got {type(answer).__name__}")
    version = answer.get("schema_version")
    if not isinstance(version, str):
        raise _bad("/schema_version", "missing")
    if not version.startswith("1."):
        raise PayloadError(f"brain answer: unsupported schema_version {version[:20]!r} (InferGuard speaks 1.x)")
    d = answer.get("diagnosis")
    if not isinstance(d, dict):
        raise _bad("/diagnosis", "expected an object")
    for key, allowed in (("root_cause", ROOT_CAUSES), ("claim_status", CLAIM_STATUSES), ("source", SOURCES)):
        if d.get(key) not in allowed:
            raise _bad(f"/diagnosis/{key}", f"{str(d.get(key))[:60]!r} is not one of {', '.join(allowed)}")
    if not isinstance(d.get("summary"), str) or not d["summary"]:
        raise _bad("/diagnosis/summary", "expected a non-empty string")
    _confidence(d.get("confidence"), "/diagnosis/confidence")
    if d.get("fallback_reason") is not None and not isinstance(d["fallback_reason"], str):
        raise _bad("/diagnosis/fallback_reason", "expected a string or null")
    _check_evidence(d.get("evidence"), "/diagnosis/evidence")
    advisories = answer.get("advisories")
    if not isinstance(advisories, list) or len(advisories) > 16:
        raise _bad("/advisories", "expected a list of at most 16 advisories")
    for i, a in enumerate(advisories):
        where = f"/advisories/{i}"
        if not isinstance(a, dict):
            raise _bad(where, "expected an object")
        if a.get("action") not in ACTIONS:
            raise _bad(f"{where}/action", f"{str(a.get('action'))[:60]!r} is not a known action")
        if a.get("advisory_only") is not True:
            raise _bad(f"{where}/advisory_only", "must be true: InferGuard only advises")
        if a.get("horizon") not in HORIZONS:
            raise _bad(f"{where}/horizon", f"one of {', '.join(HORIZONS)}")
        _confidence(a.get("confidence"), f"{where}/confidence")
        if not isinstance(a.get("parameters"), dict) or not isinstance(a.get("engine_steps"), list):
            raise _bad(where, "expected parameters (object) and engine_steps (list)")
        _check_evidence(a.get("evidence"), f"{where}/evidence", at_least=1)
    return answer  # type: ignore[return-value]  # checked above, field by field
