"""Push alerts to Alertmanager's /api/v2/alerts, the way Prometheus does: a firing alert is re-sent
while the incident is open with ``endsAt`` a few re-send periods ahead (so Alertmanager resolves it by
itself if InferGuard goes away), and sent once more with ``endsAt`` = the resolution time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from inferguard.sinks.endpoints import Endpoint
from inferguard.sinks.http import client, post_json
from inferguard.sinks.policy import Notice
from inferguard.sinks.webhook import alerts

KEEP_ALIVE_PERIODS = 4  # Prometheus' own factor between its re-send interval and endsAt


class AlertmanagerChannel:
    def __init__(self, endpoint: Endpoint, *, name: str | None = None, public_url: str | None = None,
                 resend_every: float = 60.0, transport: httpx.AsyncBaseTransport | None = None,
                 timeout_s: float = 10.0, wall_clock: Callable[[], float] = time.time) -> None:
        self.endpoint = Endpoint(endpoint.url.rstrip("/") + "/api/v2/alerts", endpoint.headers)
        self.name = name or f"alertmanager:{endpoint.display}"
        self.public_url = public_url
        self.resend_every: float | None = resend_every
        # endsAt of a firing alert is Alertmanager's own expiry, so it is reckoned on the wall clock even
        # when a replay runs on recorded time.
        self.wall_clock = wall_clock
        self._http = client(transport, timeout_s)

    async def deliver(self, notice: Notice, memo: dict[str, Any]) -> None:
        assert self.resend_every is not None
        ends = self.wall_clock() + KEEP_ALIVE_PERIODS * self.resend_every
        body = [{k: a[k] for k in ("labels", "annotations", "startsAt", "endsAt", "generatorURL")}
                for a in alerts(notice, self.public_url, firing_ends_at=ends)]
        await post_json(self._http, self.endpoint, body, what="alertmanager")

    async def aclose(self) -> None:
        await self._http.aclose()
