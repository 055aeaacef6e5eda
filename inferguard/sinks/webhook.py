"""Alertmanager's webhook payload, version 4, so any existing Alertmanager receiver consumes InferGuard.

One incident is one alert. Its labels stay fixed for the incident's life, except ``severity``: as in
Alertmanager, an alert with another severity is another alert, so a severity change carries the old
one resolved and the new one firing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import httpx

from inferguard.sinks import render
from inferguard.sinks.endpoints import Endpoint
from inferguard.sinks.http import client, post_json
from inferguard.sinks.policy import Notice

ALERTNAME = "InferGuardIncident"


def labels(inc: Mapping[str, Any], severity: str | None = None) -> dict[str, str]:
    own = {"alertname": ALERTNAME, "incident_id": str(inc.get("id", "")), "target": str(inc.get("target", "")),
           "model": str(inc.get("model") or ""), "severity": str(severity or inc.get("severity", "warning"))}
    extra = {str(k): str(v) for k, v in (inc.get("labels") or {}).items() if k not in own}
    return {**extra, **own}


def alert_annotations(inc: Mapping[str, Any], kind: str, public_url: str | None) -> dict[str, str]:
    d = inc.get("diagnosis") or {}
    out = {"summary": render.headline(kind, inc), "description": render.description(inc),
           "engine": str(inc.get("engine", "")), "codes": ",".join(inc.get("codes") or []),
           "root_cause": str(d.get("root_cause", "")), "notification": kind}
    url = render.incident_url(inc, public_url)
    if url:
        out["dashboard"] = url
    return out


def fingerprint(lbls: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(lbls.items())).encode()).hexdigest()[:16]


def alerts(notice: Notice, public_url: str | None, *, firing_ends_at: float | None = None) -> list[dict[str, Any]]:
    """The alerts a notice stands for: the incident's alert (firing or resolved), plus, after a severity
    change, the alert under the previous severity, resolved."""
    inc = notice["incident"]
    kind = notice["kind"]
    resolved = kind == "resolved"
    lbls = labels(inc)
    ends = inc.get("resolved_at") or notice["at"] if resolved else firing_ends_at
    out = [{"status": "resolved" if resolved else "firing", "labels": lbls,
            "annotations": alert_annotations(inc, kind, public_url), "startsAt": render.rfc3339(inc.get("opened_at")),
            "endsAt": render.rfc3339(ends), "generatorURL": render.incident_url(inc, public_url),
            "fingerprint": fingerprint(lbls)}]
    prev = notice.get("previous_severity")
    if prev and prev != lbls["severity"]:
        old = labels(inc, prev)
        out.append({**out[0], "status": "resolved", "labels": old, "endsAt": render.rfc3339(notice["at"]),
                    "fingerprint": fingerprint(old)})
    return out


def payload(notice: Notice, *, receiver: str = "inferguard", public_url: str | None = None) -> dict[str, Any]:
    items = alerts(notice, public_url)
    group = {"incident_id": items[0]["labels"]["incident_id"]}
    common_labels = {k: v for k, v in items[0]["labels"].items() if all(a["labels"].get(k) == v for a in items)}
    return {
        "version": "4",
        "groupKey": "{}:{incident_id=" + json.dumps(group["incident_id"]) + "}",
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in items) else "resolved",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": common_labels,
        "commonAnnotations": items[0]["annotations"],
        "externalURL": public_url or "",
        "alerts": items,
    }


class WebhookChannel:
    """POSTs the version-4 payload to one receiver, with an Idempotency-Key header (the notice's key) so a
    receiver can drop the rare duplicate of an at-least-once delivery."""

    resend_every: float | None = None

    def __init__(self, endpoint: Endpoint, *, name: str | None = None, public_url: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, timeout_s: float = 10.0) -> None:
        self.endpoint = endpoint
        self.name = name or f"webhook:{endpoint.display}"
        self.public_url = public_url
        self._http = client(transport, timeout_s)

    async def deliver(self, notice: Notice, memo: dict[str, Any]) -> None:
        await post_json(self._http, self.endpoint, payload(notice, public_url=self.public_url), what="webhook",
                        headers={"Idempotency-Key": notice["key"]})

    async def aclose(self) -> None:
        await self._http.aclose()
