"""The brain wire format: the only inferguard module that knows it.

Builds the versioned payload dicts sent to ``rlm_agent`` (in-process or over HTTP) and validates the
answers that come back, against the JSON Schemas checked in under ``rlm_agent/schemas/``. The schema
files are read from disk; ``rlm_agent`` itself is never imported here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

from .errors import PayloadError
from .models import ANOMALY_CODES, SIGNALS

SCHEMA_VERSION = "1.0"
MAX_WINDOW = 600  # samples; the schema allows 2000, the brain needs minutes, not hours
MAX_SIMILAR = 20


@cache
def _schema(name: str) -> dict[str, Any]:
    spec = importlib.util.find_spec("rlm_agent")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise PayloadError("brain schemas not found: the rlm_agent package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "schemas" / f"{name}.schema.json"
    try:
        schema: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise PayloadError(f"brain schema {path.name} unreadable: {exc}") from None
    return schema


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema(name))


def _validate(name: str, doc: Any) -> None:
    if not isinstance(doc, dict):
        raise PayloadError(f"brain {name}: expected a JSON object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if isinstance(version, str) and not version.startswith("1."):
        raise PayloadError(f"brain {name}: unsupported schema_version {version!r} (InferGuard speaks 1.x)")
    err = best_match(_validator(name).iter_errors(doc))
    if err is not None:
        where = "/" + "/".join(str(p) for p in err.absolute_path)
        raise PayloadError(f"brain {name} invalid at {where}: {err.message[:300]}")


def _number(value: Any, where: str) -> float | None:
    """A finite float, or None for a missing/NaN value (unknown); anything else is an error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{where}: expected a number, got {type(value).__name__}")
    f = float(value)
    return f if math.isfinite(f) else None


def _window(window: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(window, Sequence) or isinstance(window, str | bytes):
        raise PayloadError("window: expected a list of {ts, values}")
    out: list[dict[str, Any]] = []
    for i, sample in enumerate(window[-MAX_WINDOW:]):
        if not isinstance(sample, Mapping) or "ts" not in sample or not isinstance(sample.get("values"), Mapping):
            raise PayloadError(f"window[{i}]: expected {{'ts': float, 'values': {{signal: float}}}}")
        ts = _number(sample["ts"], f"window[{i}].ts")
        if ts is None:
            raise PayloadError(f"window[{i}].ts: not a finite number")
        values: dict[str, float] = {}
        for name, value in sample["values"].items():
            v = _number(value, f"window[{i}].values.{name}")
            # Only canonical signals cross the wire; a NaN is unknown, so it is left out, never 0.
            if v is not None and name in SIGNALS:
                values[name] = v
        out.append({"ts": ts, "values": values})
    out.sort(key=lambda s: float(s["ts"]))
    return out


def _similar(similar: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, past in enumerate(similar[:MAX_SIMILAR]):
        if not isinstance(past, Mapping) or "id" not in past:
            raise PayloadError(f"similar[{i}]: expected an incident summary with an id")
        codes = past.get("codes")
        if codes is None:
            codes = [a.get("code") for a in past.get("anomalies", []) if isinstance(a, Mapping)]
        diagnosis = past.get("diagnosis") if isinstance(past.get("diagnosis"), Mapping) else {}
        opened = _number(past.get("opened_at"), f"similar[{i}].opened_at")
        out.append({
            "id": str(past["id"]),
            "fingerprint": None if past.get("fingerprint") is None else str(past["fingerprint"]),
            "target": None if past.get("target") is None else str(past["target"]),
            "codes": sorted({str(c) for c in codes if c in ANOMALY_CODES}),
            "root_cause": past.get("root_cause") or (diagnosis or {}).get("root_cause"),
            "opened_at": opened if opened is not None else 0.0,
            "resolved_at": _number(past.get("resolved_at"), f"similar[{i}].resolved_at"),
            "score": _number(past.get("score"), f"similar[{i}].score"),
        })
    return out


_INCIDENT_KEYS = ("id", "fingerprint", "target", "engine", "model", "severity", "status", "synthetic",
                  "opened_at", "updated_at", "resolved_at")


def _incident(incident: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(incident, Mapping):
        raise PayloadError(f"incident: expected a dict, got {type(incident).__name__}")
    missing = [k for k in (*_INCIDENT_KEYS[:10], "anomalies") if k not in incident]
    if missing:
        raise PayloadError(f"incident {incident.get('id', '?')}: missing {', '.join(missing)}")
    out = {k: incident.get(k) for k in _INCIDENT_KEYS}
    out["labels"] = {str(k): str(v) for k, v in (incident.get("labels") or {}).items()}
    anomalies = []
    for j, a in enumerate(incident["anomalies"]):
        if not isinstance(a, Mapping):
            raise PayloadError(f"incident.anomalies[{j}]: expected a dict")
        anomalies.append({
            "code": a.get("code"), "severity": a.get("severity"), "active": a.get("active"),
            "summary": str(a.get("summary", "")), "since": a.get("since"), "cleared_at": a.get("cleared_at"),
            "evidence": [{"signal": str(e.get("signal", "")),
                          "value": _number(e.get("value"), f"anomalies[{j}].evidence.value"),
                          "threshold": _number(e.get("threshold"), f"anomalies[{j}].evidence.threshold"),
                          "op": str(e.get("op", "")), "note": str(e.get("note", ""))}
                         for e in a.get("evidence", []) if isinstance(e, Mapping)],
        })
    out["anomalies"] = anomalies
    return out


# -- redaction ------------------------------------------------------------------------------------
_IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}\b")
_HOST = re.compile(r"\b(?=[A-Za-z0-9.-]*[A-Za-z])(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z][A-Za-z0-9-]{0,62}\b")


def _tag(kind: str, value: str) -> str:
    return f"{kind}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


class _Redactor:
    """Stable placeholders (same input, same tag) for targets, hosts, IPs and model names."""

    def __init__(self, targets: Sequence[str], models: Sequence[str]) -> None:
        lits: dict[str, str] = {}
        for t in targets:
            if t:
                lits[t] = _tag("target", t)
                host = urlsplit(t).hostname if "://" in t else None
                if host:
                    lits[host] = _tag("host", host)
        for m in models:
            if m:
                lits[m] = _tag("model", m)
        self._lits = sorted(lits.items(), key=lambda kv: -len(kv[0]))

    def __call__(self, s: str) -> str:
        for lit, tag in self._lits:
            s = s.replace(lit, tag)
        s = _IP.sub(lambda m: _tag("ip", m.group(0)), s)
        return _HOST.sub(lambda m: _tag("host", m.group(0)), s)


def _redact(payload: dict[str, Any]) -> dict[str, Any]:
    similar_targets = [s["target"] for s in payload["similar"] if s.get("target")]
    r = _Redactor([payload["target"], *similar_targets], [payload["model"]])
    payload["target"], payload["model"] = r(payload["target"]), r(payload["model"])
    payload["labels"] = {k: r(v) for k, v in payload.get("labels", {}).items()}
    inc = payload.get("incident")
    if inc is not None:
        inc["target"], inc["model"] = r(inc["target"]), r(str(inc["model"]))
        inc["labels"] = {k: r(v) for k, v in inc.get("labels", {}).items()}
        for a in inc["anomalies"]:
            a["summary"] = r(a["summary"])
            for e in a["evidence"]:
                e["note"] = r(e["note"])
    for s in payload["similar"]:
        if s.get("target"):
            s["target"] = r(s["target"])
    payload["redacted"] = True
    return payload


# -- public -----------------------------------------------------------------------------------------
def build_incident_payload(incident: dict[str, Any], window: list[dict[str, Any]], similar: list[dict[str, Any]],
                           *, redact: bool = False) -> dict[str, Any]:
    """The payload for one incident, validated; :class:`PayloadError` names what was wrong."""
    inc = _incident(incident)
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "kind": "incident",
        "target": str(inc["target"]), "engine": inc["engine"], "model": str(inc["model"]),
        "synthetic": bool(inc["synthetic"]), "redacted": False, "labels": dict(inc["labels"]),
        "incident": inc, "window": _window(window), "similar": _similar(similar),
    }
    if redact:
        payload = _redact(payload)
    _validate("payload", payload)
    return payload


def build_proactive_payload(target: str, engine: str, model: str, window: list[dict[str, Any]],
                            similar: list[dict[str, Any]], *, synthetic: bool = False) -> dict[str, Any]:
    """The payload for a proactive W1–W4 investigation of one target, validated."""
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "kind": "proactive", "target": str(target), "engine": engine,
        "model": str(model), "synthetic": bool(synthetic), "window": _window(window),
        "similar": _similar(similar),
    }
    _validate("payload", payload)
    return payload


def parse_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """Validate a brain answer; :class:`PayloadError` names the offending field."""
    _validate("answer", answer)
    return answer


def validate_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Validate a payload built elsewhere (tests, a replayed file)."""
    _validate("payload", payload)
    return payload
