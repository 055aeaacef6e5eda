"""What every backend derives from an event document: its idempotency key, the incident's searchable
text, its numeric fingerprint and the short summary recall answers with. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from inferguard.models import ANOMALY_CODES, ENGINES

EVENT_KINDS = ("incident.opened", "incident.updated", "incident.reopened", "incident.resolved")

# Signal levels at the peak that go into the fingerprint, each squashed to about 0-1 so no one
# signal's unit dominates the cosine: ratios as they are, counts and rates through log1p/scale.
_LEVELS: dict[str, tuple[str, float]] = {
    "kv_usage": ("ratio", 1.0),
    "requests_waiting": ("log", 64.0),
    "requests_running": ("log", 256.0),
    "preemptions_per_s": ("log", 16.0),
    "requests_swapped": ("log", 64.0),
    "ttft_p95_s": ("log", 30.0),
    "itl_p95_s": ("log", 2.0),
    "error_ratio": ("ratio", 1.0),
    "prefix_cache_hit_ratio": ("ratio", 1.0),
    "spec_accept_ratio": ("ratio", 1.0),
    "gpu_temp_c": ("ratio", 100.0),
}
DIMENSIONS = len(ANOMALY_CODES) + len(ENGINES) + len(_LEVELS)
# Which fingerprint layout a stored vector was computed with: a vector from another layout is not
# comparable (the embedded store re-computes its vectors when this changes; schema migration 3).
FINGERPRINT_LAYOUT = zlib.crc32(json.dumps([ANOMALY_CODES, ENGINES, sorted(_LEVELS.items())]).encode())
# Words that say nothing about an incident: left out of a query (each would match nearly every text).
_STOPWORDS = frozenset({"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it",
                        "of", "on", "or", "the", "to", "was", "were", "with", "after", "before", "again", "our",
                        "we"})


def check_event(event: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The event's kind and its incident; a malformed document is a ValueError naming what is wrong."""
    if not isinstance(event, Mapping):
        raise ValueError(f"event must be a dict, got {type(event).__name__}")
    kind = event.get("event")
    if kind not in EVENT_KINDS:
        raise ValueError(f"event kind must be one of {', '.join(EVENT_KINDS)}, got {kind!r}")
    inc = event.get("incident")
    if not isinstance(inc, Mapping) or not isinstance(inc.get("id"), str) or not inc["id"]:
        raise ValueError("event has no incident with an id")
    return str(kind), inc


def event_ts(event: Mapping[str, Any]) -> float:
    inc = event.get("incident") or {}
    ts = event.get("ts")
    if ts is None:
        ts = inc.get("resolved_at") if event.get("event") == "incident.resolved" else inc.get("updated_at")
    return float(ts or 0.0)


def event_key(event: Mapping[str, Any]) -> str:
    """Idempotency key: (incident id, kind, ts, changes). A replayed spool maps to the same key."""
    kind, inc = check_event(event)
    raw = json.dumps([inc["id"], kind, event_ts(event), list(event.get("changes") or [])], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as kept in the stream: everything but the (large) incident body."""
    kind, inc = check_event(event)
    return {"key": event_key(event), "event": kind, "incident_id": inc["id"], "ts": event_ts(event),
            "changes": [str(c) for c in event.get("changes") or []], "severity": inc.get("severity"),
            "status": inc.get("status"), "target": inc.get("target")}


_NUMBER = re.compile(r"(?<![\w.-])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?:%|[a-z]{1,2}\b)?", re.IGNORECASE)


def signature_text(inc: Mapping[str, Any]) -> str:
    """What text recall indexes: the incident's phrases without measurements (numbers), in a canonical
    order, with its model but not its target, labels or engine (those are filters). Incidents that
    read the same share one indexed text, so a query scores the few distinct texts, not every incident."""
    parts: set[str] = set(inc.get("codes") or [])
    for a in inc.get("anomalies") or []:
        if isinstance(a, Mapping):
            parts.add(str(a.get("code") or ""))
            parts.add(_NUMBER.sub(" ", str(a.get("summary") or "")))
    diag = inc.get("diagnosis")
    if isinstance(diag, Mapping):
        parts.add(str(diag.get("root_cause") or ""))
        parts.update(_NUMBER.sub(" ", str(diag.get(k) or "")) for k in ("summary", "explanation"))
    for adv in inc.get("advisories") or []:
        if isinstance(adv, Mapping):
            parts.add(str(adv.get("action") or ""))
            parts.update(_NUMBER.sub(" ", str(s)) for s in adv.get("engine_steps") or [])
    parts.add(str(inc.get("model") or ""))
    note = inc.get("outcome")
    if isinstance(note, Mapping) and note.get("note"):
        parts.add(str(note["note"]))
    return " ".join(" ".join(p.replace("_", " ").split()) for p in sorted(parts) if p.strip())


def incident_text(inc: Mapping[str, Any]) -> str:
    """What text recall searches: codes, summaries, diagnosis, advisories, engine, model, target, labels."""
    parts: list[str] = []
    parts.extend(str(c) for c in inc.get("codes") or [])
    for a in inc.get("anomalies") or []:
        if isinstance(a, Mapping):
            parts.extend(str(a.get(k) or "") for k in ("code", "summary"))
    diag = inc.get("diagnosis")
    if isinstance(diag, Mapping):
        parts.extend(str(diag.get(k) or "") for k in ("root_cause", "summary", "explanation"))
        parts.extend(str(e) for e in diag.get("evidence") or [] if isinstance(e, str))
    for adv in inc.get("advisories") or []:
        if isinstance(adv, Mapping):
            parts.extend(str(adv.get(k) or "") for k in ("action", "summary", "rationale"))
            parts.extend(str(s) for s in adv.get("engine_steps") or [])
    parts.extend(str(inc.get(k) or "") for k in ("engine", "model", "target"))
    for k, v in (inc.get("labels") or {}).items():
        parts.append(f"{k} {v}")
    note = inc.get("outcome")
    if isinstance(note, Mapping) and note.get("note"):
        parts.append(str(note["note"]))
    return " ".join(p for p in parts if p).replace("_", " ")


def peak_levels(inc: Mapping[str, Any], previous: Mapping[str, float] | None = None) -> dict[str, float]:
    """The highest level of each fingerprint signal seen in the incident's evidence, so far."""
    out = {k: float(v) for k, v in (previous or {}).items()}
    for a in inc.get("anomalies") or []:
        if not isinstance(a, Mapping):
            continue
        for e in a.get("evidence") or []:
            if not isinstance(e, Mapping):
                continue
            name, value = e.get("signal"), e.get("value")
            if name in _LEVELS and isinstance(value, int | float) and math.isfinite(value):
                out[str(name)] = max(out.get(str(name), float("-inf")), float(value))
    return out


def fingerprint_vector(inc: Mapping[str, Any], levels: Mapping[str, float]) -> list[float]:
    """Codes (one-hot), engine (one-hot) and squashed peak levels, unit length (cosine = dot)."""
    codes = set(inc.get("codes") or [])
    vec = [1.0 if c in codes else 0.0 for c in ANOMALY_CODES]
    engine = inc.get("engine")
    vec += [0.5 if engine == e else 0.0 for e in ENGINES]  # engine matters, but less than what went wrong
    for name, (kind, scale) in _LEVELS.items():
        v = levels.get(name)
        if v is None:
            vec.append(0.0)
        elif kind == "ratio":
            vec.append(max(0.0, min(1.0, v / scale)))
        else:
            vec.append(min(1.0, math.log1p(max(0.0, v)) / math.log1p(scale)))
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm else vec


def summary(inc: Mapping[str, Any], score: float | None) -> dict[str, Any]:
    """A recall hit: the fields the brain payload's ``similar`` and the CLI show, plus the outcome."""
    diag = inc.get("diagnosis") if isinstance(inc.get("diagnosis"), Mapping) else {}
    return {"id": inc.get("id"), "fingerprint": inc.get("fingerprint"), "target": inc.get("target"),
            "engine": inc.get("engine"), "model": inc.get("model"), "status": inc.get("status"),
            "severity": inc.get("peak_severity") or inc.get("severity"), "codes": list(inc.get("codes") or []),
            "opened_at": inc.get("opened_at"), "resolved_at": inc.get("resolved_at"),
            "root_cause": (diag or {}).get("root_cause"), "summary": (diag or {}).get("summary"),
            "outcome": inc.get("outcome"), "score": None if score is None else round(float(score), 6)}


def query_terms(query: str) -> list[str]:
    """Words of a free-text query, as the FTS tokenizer sees them (underscores split words)."""
    words = [w.lower() for w in re.findall(r"[^\W_]+", query)]
    return [w for w in words if w not in _STOPWORDS][:32] or words[:32]


def merge_window(old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]], cap: int) -> list[dict[str, Any]]:
    """The signals around an incident: samples by ts (a later copy wins). Past ``cap`` the oldest half
    (the run-up to the opening) and the newest half (the latest state) are kept, the middle dropped."""
    by_ts: dict[float, dict[str, Any]] = {}
    for s in [*old, *new]:
        if isinstance(s, Mapping) and isinstance(s.get("ts"), int | float):
            by_ts[float(s["ts"])] = dict(s)
    ordered = [by_ts[t] for t in sorted(by_ts)]
    if len(ordered) <= cap:
        return ordered
    head = cap // 2
    return ordered[:head] + ordered[len(ordered) - (cap - head):]
