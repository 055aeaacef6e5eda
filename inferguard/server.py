"""The daemon's HTTP surface: its own /metrics, /healthz (heartbeat), /readyz and a read-only API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inferguard.telemetry import Telemetry


class Health:
    """Heartbeat state the loop writes and the probes read."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.last_cycle: float | None = None
        self.cycles = 0

    def beat(self) -> None:
        self.last_cycle = self.clock()
        self.cycles += 1

    def healthy(self) -> bool:
        # Alive while cycles keep finishing; three missed intervals means the loop is stuck.
        return self.last_cycle is not None and self.clock() - self.last_cycle <= 3 * self.interval_s + 10

    def status(self) -> dict[str, Any]:
        age = None if self.last_cycle is None else round(self.clock() - self.last_cycle, 3)
        return {"healthy": self.healthy(), "cycles": self.cycles, "last_cycle_age_s": age}


def build_app(telemetry: Telemetry, health: Health, incidents: Callable[[], list[dict[str, Any]]],
              targets: Callable[[], list[dict[str, Any]]]) -> Starlette:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        # Before the first cycle finishes the process is starting, not dead.
        ok = health.healthy() or health.last_cycle is None
        return JSONResponse(health.status(), status_code=200 if ok else 503)

    async def readyz(_: Request) -> Response:
        return JSONResponse(health.status(), status_code=200 if health.healthy() else 503)

    async def api_incidents(request: Request) -> Response:
        status = request.query_params.get("status")
        items = [i for i in incidents() if status is None or i["status"] == status]
        return JSONResponse({"incidents": items})

    async def api_targets(_: Request) -> Response:
        return JSONResponse({"targets": targets()})

    return Starlette(routes=[
        Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz),
        Route("/api/incidents", api_incidents), Route("/api/targets", api_targets),
    ])
