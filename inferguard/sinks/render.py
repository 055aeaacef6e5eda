"""What a person reads about an incident, built once from its IncidentDoc for every channel."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end time"


def rfc3339(ts: float | None) -> str:
    if ts is None:
        return ZERO_TIME
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def target_name(inc: Mapping[str, Any]) -> str:
    labels = inc.get("labels") or {}
    return str(labels.get("name") or inc.get("target_name") or inc.get("target") or "?")


def incident_url(inc: Mapping[str, Any], public_url: str | None) -> str:
    """The dashboard page opened on the incident. Not the JSON API: with a token set it wants a bearer
    header, which a link clicked in Slack never carries (the page asks for the token instead)."""
    if not public_url:
        return ""
    return f"{public_url.rstrip('/')}/#incident={quote(str(inc.get('id', '')), safe='')}"


def headline(notice_kind: str, inc: Mapping[str, Any], extra: str = "") -> str:
    codes = ", ".join(_active_codes(inc)) or ", ".join(inc.get("codes") or []) or "-"
    state = {"firing": "FIRING", "severity": "CHANGED", "repeat": "STILL FIRING", "resolved": "RESOLVED"}.get(
        notice_kind, notice_kind.upper())
    sev = str(inc.get("severity", "warning")).upper()
    text = f"[{state}] {sev} {target_name(inc)}: {codes}"
    return f"{text} ({extra})" if extra else text


def anomaly_lines(inc: Mapping[str, Any]) -> list[str]:
    out = []
    for a in inc.get("anomalies") or []:
        if not a.get("active", True):
            continue
        numbers = ", ".join(_evidence(e) for e in (a.get("evidence") or [])[:4])
        out.append(f"{a.get('severity', '?')} {a.get('code', '?')}: {a.get('summary', '')}"
                   + (f" ({numbers})" if numbers else ""))
    return out


def diagnosis_line(inc: Mapping[str, Any]) -> str:
    d = inc.get("diagnosis") or None
    if not d:
        return "root cause: not diagnosed yet"
    conf = d.get("confidence")
    conf_s = f"{conf:.2f}" if isinstance(conf, int | float) else "?"
    return (f"root cause: {d.get('root_cause', '?')} (confidence {conf_s}, {d.get('claim_status', '?')}, "
            f"{d.get('source', '?')}): {d.get('summary', '')}")


def advisory_lines(inc: Mapping[str, Any]) -> list[str]:
    out = []
    for a in inc.get("advisories") or []:
        steps = "; ".join(a.get("engine_steps") or [])
        out.append(f"ADVISORY {a.get('action', '?')} [{a.get('horizon', '?')}, confidence "
                   f"{a.get('confidence', '?')}]" + (f": {steps}" if steps else ""))
    return out


def description(inc: Mapping[str, Any]) -> str:
    lines = [f"engine {inc.get('engine', '?')}, model {inc.get('model', '?') or '?'}, incident {inc.get('id', '?')}",
             *anomaly_lines(inc), diagnosis_line(inc), *advisory_lines(inc)]
    for a in inc.get("actions") or []:
        verified = a.get("verification") or ""
        lines.append(f"action {a.get('action', '?')}: {a.get('outcome', '?')} {verified}".strip())
    return "\n".join(lines)


def _active_codes(inc: Mapping[str, Any]) -> list[str]:
    return sorted({str(a.get("code")) for a in inc.get("anomalies") or [] if a.get("active", True)})


def _evidence(e: Mapping[str, Any]) -> str:
    v = e.get("value")
    if isinstance(v, float):
        v = f"{v:.3g}"
    thr = e.get("threshold")
    return f"{e.get('signal', '?')}={v}" + (f" {e.get('op', '')} {thr}" if thr is not None else "")
