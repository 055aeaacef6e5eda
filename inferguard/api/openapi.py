"""The API's OpenAPI 3.1 description, served at /openapi.json (a test checks it names every route)."""

from __future__ import annotations

from typing import Any


def _get(summary: str, params: list[dict[str, Any]] | None = None, *, auth: bool = True,
         responses: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"get": {"summary": summary, "parameters": params or [],
                                   "responses": {"200": {"description": "OK"},
                                                 **{k: {"description": v} for k, v in (responses or {}).items()}}}}
    if not auth:
        out["get"]["security"] = []
    return out


def _q(name: str, desc: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": desc, "required": required, "schema": schema}


_BAD = {"400": "a bad parameter; the body names it", "401": "missing or wrong bearer token (when a token is set)",
        "429": "rate limited; see Retry-After"}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "InferGuard API", "version": "1",
             "description": "Read-only but for silences (POST /api/silences, DELETE /api/silences/{id}). No "
                            "request triggers an LLM call or an action. With INFERGUARD_API_TOKEN "
                            "set, every path but /healthz, /readyz and the page shell needs "
                            "'Authorization: Bearer <token>'."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/api/status": _get("Targets: name, engine, model, health, last scrape, open incidents, sparkline "
                            "series (kv_usage, requests_waiting, ttft_p95_s, preemptions_per_s; null = unknown)",
                            responses=_BAD),
        "/api/targets": _get("Same as /api/status (kept for older clients)", responses=_BAD),
        "/api/incidents": _get("Incidents, newest first, with total for paging", [
            _q("status", "open or resolved", {"enum": ["open", "resolved"]}),
            _q("target", "target URL or name", {"type": "string"}),
            _q("code", "an anomaly code, e.g. kv_pressure", {"type": "string"}),
            _q("since", "updated at or after this Unix time", {"type": "number"}),
            _q("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
            _q("offset", "items to skip", {"type": "integer", "minimum": 0, "default": 0}),
        ], responses=_BAD),
        "/api/incidents/{incident_id}": {"get": {
            "summary": "One incident: events, diagnosis history, advisories, actions, a window of signals",
            "parameters": [{"name": "incident_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "OK"}, "404": {"description": "no such incident"}}}},
        "/api/recall": _get("Past incidents like a free-text query (incident memory when configured)", [
            _q("q", "the query", {"type": "string", "minLength": 1, "maxLength": 500}, required=True),
            _q("limit", "results", {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}),
        ], responses=_BAD),
        "/api/advisories": _get("Advisories of open incidents (reactive) and of proactive investigations",
                                responses=_BAD),
        "/api/silences": {
            **_get("Active notification silences (source 'none' when no notification channel is configured)",
                   [_q("all", "include silences that ended within the last week", {"enum": ["true", "false"]})],
                   responses=_BAD),
            "post": {"summary": "Add a silence: no notification about CODE on TARGET (names or globs) for a while; "
                                "the resolve of an announced incident still goes out",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["target", "code", "for", "comment"],
                         "additionalProperties": False,
                         "properties": {"target": {"type": "string"}, "code": {"type": "string"},
                                        "for": {"type": "string", "description": "90s, 30m, 2h, 1d"},
                                        "comment": {"type": "string"}}}}}},
                     "responses": {"201": {"description": "the silence"},
                                   "400": {"description": "a bad field; the body names it"},
                                   "401": {"description": "missing or wrong bearer token (when a token is set)"},
                                   "409": {"description": "no notification channel is configured"},
                                   "415": {"description": "not a JSON body"}}}},
        "/api/silences/{silence_id}": {"delete": {
            "summary": "Expire a silence now",
            "parameters": [{"name": "silence_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the expired silence"},
                          "401": {"description": "missing or wrong bearer token (when a token is set)"},
                          "404": {"description": "no active silence with that id"},
                          "409": {"description": "no notification channel is configured"}}}},
        "/api/actions": _get("The actuation audit, oldest first: every decision (denied and why, dry_run, sent, "
                             "failed, verified); source 'none' when actuation is off", [
            _q("incident", "one incident's entries", {"type": "string"}),
            _q("limit", "newest entries", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
        ], responses=_BAD),
        "/api/events": _get("Server-sent events: a 'status' event (the /api/status document) on every change",
                            responses={"503": "too many live streams"}),
        "/openapi.json": _get("This description"),
        "/metrics": _get("InferGuard's own Prometheus metrics"),
        "/healthz": _get("Liveness: 200 while cycles keep finishing", auth=False, responses={"503": "stalled"}),
        "/readyz": _get("Readiness: 200 once a cycle has finished recently", auth=False,
                        responses={"503": "not ready"}),
        "/": _get("The dashboard page (holds no data; it asks for the token when one is set)", auth=False),
    },
}
