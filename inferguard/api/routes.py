"""The JSON API and the page. Every GET reads the read model; none calls the LLM or acts. The only writes
are silences (POST /api/silences, DELETE /api/silences/{id}): JSON bodies only, behind the token when one
is set (api/guard.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from inferguard.api.guard import Guard, GuardConfig
from inferguard.api.health import Health
from inferguard.api.openapi import OPENAPI
from inferguard.api.readmodel import ApiReadModel
from inferguard.errors import SilenceError
from inferguard.telemetry import Telemetry

# The dashboard: static files shipped inside the package (no build step).
WEB = Path(__file__).resolve().parent / "web"
STATUSES = ("open", "resolved")
MAX_LIMIT = 500
MAX_STREAMS = 16  # live dashboards at once; each holds a connection the cap cannot evict


class BadParam(ValueError):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}")
        self.name = name


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise BadParam(key, f"unknown parameter; allowed: {', '.join(allowed)}")
        if key in out:
            raise BadParam(key, "given more than once")
        if len(value) > 500:
            raise BadParam(key, "longer than 500 characters")
        out[key] = value
    return out


def _int(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadParam(name, f"must be an integer from {lo} to {hi}")
    return int(raw)


def _bad(exc: BadParam) -> JSONResponse:
    return JSONResponse({"error": str(exc), "parameter": exc.name}, status_code=400)


def _refused(exc: SilenceError, missing: int = 400) -> JSONResponse:
    # "silences": no notification channel runs (409); "id": no such active silence; else the bad field.
    status = 409 if exc.field == "silences" else missing if exc.field == "id" else 400
    return JSONResponse({"error": str(exc), "parameter": exc.field}, status_code=status)


def filter_incidents(items: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise BadParam("status", f"must be one of {', '.join(STATUSES)}")
    since: float | None = None
    if "since" in params:
        try:
            since = float(params["since"])
        except ValueError:
            raise BadParam("since", "must be a Unix time in seconds") from None
        if since != since or since in (float("inf"), float("-inf")):
            raise BadParam("since", "must be a finite Unix time in seconds")
    target, code = params.get("target"), params.get("code")
    return [i for i in items
            if (status is None or i.get("status") == status)
            and (target is None or target in (i.get("target"), (i.get("labels") or {}).get("name")))
            and (code is None or code in i.get("codes", []))
            and (since is None or float(i.get("updated_at") or i.get("opened_at") or 0) >= since)]


class StreamGate:
    """Counts live event streams and ends them all when the server stops."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self.limit = limit
        self.open = 0
        self.closing = asyncio.Event()


def build_app(telemetry: Telemetry, health: Health, model: ApiReadModel, guard: GuardConfig | None = None, *,
              clock: Callable[[], float] = time.time, gate: StreamGate | None = None,
              stream_period_s: float = 1.0) -> Guard:
    streams = gate or StreamGate()

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        # Before the first cycle finishes the process is starting, not dead, unless that takes a stall's time.
        ok = not health.stalled()
        return JSONResponse(health.status(), status_code=200 if ok else 503)

    async def readyz(_: Request) -> Response:
        return JSONResponse(health.status(), status_code=200 if health.healthy() else 503)

    def status_doc() -> dict[str, Any]:
        return {"generated_at": clock(), "revision": model.revision(), "targets": model.targets()}

    async def api_status(request: Request) -> Response:
        try:
            _params(request, ())
        except BadParam as exc:
            return _bad(exc)
        return JSONResponse(status_doc())

    async def api_incidents(request: Request) -> Response:
        try:
            params = _params(request, ("status", "target", "code", "since", "limit", "offset"))
            limit = _int(params, "limit", 50, 1, MAX_LIMIT)
            offset = _int(params, "offset", 0, 0, 10**9)
            items = filter_incidents(model.incidents(), params)
        except BadParam as exc:
            return _bad(exc)
        return JSONResponse({"incidents": items[offset:offset + limit], "total": len(items),
                             "limit": limit, "offset": offset})

    async def api_incident(request: Request) -> Response:
        inc = await model.incident(request.path_params["incident_id"])
        if inc is None:
            return JSONResponse({"error": "no such incident"}, status_code=404)
        return JSONResponse(inc)

    async def api_recall(request: Request) -> Response:
        try:
            params = _params(request, ("q", "limit"))
            limit = _int(params, "limit", 5, 1, 50)
            q = params.get("q", "").strip()
            if not q:
                raise BadParam("q", "a non-empty query is required")
        except BadParam as exc:
            return _bad(exc)
        return JSONResponse({"query": q, **await model.recall(q, limit)})

    async def api_advisories(request: Request) -> Response:
        try:
            _params(request, ())
        except BadParam as exc:
            return _bad(exc)
        return JSONResponse({**model.advisories(), "advisory_only": True})

    async def api_silences(request: Request) -> Response:
        if request.method == "POST":
            return await add_silence(request)
        try:
            params = _params(request, ("all",))
            if params.get("all", "false") not in ("true", "false"):
                raise BadParam("all", "must be true or false")
        except BadParam as exc:
            return _bad(exc)
        return JSONResponse(await model.silences(include_expired=params.get("all") == "true"))

    async def add_silence(request: Request) -> Response:
        # JSON only: a browser cannot send it cross-site without a preflight, which this API refuses.
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return JSONResponse({"error": "send the silence as JSON (Content-Type: application/json)"},
                                status_code=415)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": 'expected {"target", "code", "for", "comment"}'}, status_code=400)
        fields = {"target": "target", "code": "code", "for": "duration", "comment": "comment"}
        unknown = sorted(set(body) - set(fields))
        if unknown:
            return JSONResponse({"error": f"unknown field(s): {', '.join(unknown)}", "parameter": unknown[0]},
                                status_code=400)
        bad = next((k for k in fields if not isinstance(body.get(k), str)), None)
        if bad is not None:
            return JSONResponse({"error": f"{bad}: required, a string", "parameter": bad}, status_code=400)
        try:
            sil = await model.add_silence(**{fields[k]: body[k] for k in fields})
        except SilenceError as exc:
            return _refused(exc)
        return JSONResponse(sil, status_code=201)

    async def api_silence(request: Request) -> Response:  # DELETE only (the route says so)
        try:
            return JSONResponse(await model.expire_silence(request.path_params["silence_id"]))
        except SilenceError as exc:
            return _refused(exc, missing=404)

    async def api_actions(request: Request) -> Response:
        try:
            params = _params(request, ("incident", "limit"))
            limit = _int(params, "limit", 100, 1, 1000)
        except BadParam as exc:
            return _bad(exc)
        return JSONResponse(await model.actions(params.get("incident"), limit))

    async def api_events(request: Request) -> Response:
        if streams.open >= streams.limit:
            return JSONResponse({"error": f"too many live streams (limit {streams.limit})"}, status_code=503,
                                headers={"retry-after": "10"})
        streams.open += 1

        async def events() -> AsyncIterator[bytes]:
            seen = -1
            idle = 0.0
            try:
                while not streams.closing.is_set():
                    rev = model.revision()
                    if rev != seen:
                        seen, idle = rev, 0.0
                        yield b"event: status\ndata: " + json.dumps(status_doc()).encode() + b"\n\n"
                    elif idle >= 15:
                        idle = 0.0
                        yield b": keep-alive\n\n"  # proxies close silent streams
                    try:
                        await asyncio.wait_for(streams.closing.wait(), stream_period_s)
                    except TimeoutError:
                        idle += stream_period_s
            finally:
                streams.open -= 1

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def openapi(_: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def index(_: Request) -> Response:
        return FileResponse(str(WEB / "index.html"), media_type="text/html")

    app = Starlette(routes=[
        Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz),
        Route("/api/status", api_status), Route("/api/targets", api_status),
        Route("/api/incidents", api_incidents), Route("/api/incidents/{incident_id}", api_incident),
        Route("/api/recall", api_recall), Route("/api/advisories", api_advisories),
        Route("/api/silences", api_silences, methods=["GET", "POST"]),
        Route("/api/silences/{silence_id}", api_silence, methods=["DELETE"]),
        Route("/api/actions", api_actions), Route("/api/events", api_events),
        Route("/openapi.json", openapi), Route("/", index),
        Mount("/static", StaticFiles(directory=str(WEB)), name="static"),
    ])
    return Guard(app, guard or GuardConfig())
