"""The API read model: what ``/api/incidents`` and ``/api/targets`` serve, kept from the event stream.

Every incident ever seen, in the order it opened, as of its last event; open incidents are read fresh
from the last cycle's status (their evidence moves between events). Documents are JSON-safe (no NaN).
"""

from __future__ import annotations

import math
from typing import Any

from inferguard.protocols import CycleStatus, EventDoc, TargetDoc


def _finite(obj: Any) -> Any:
    """JSON has no NaN/Infinity; the API must stay valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


class ReadModel:
    name = "api"

    def __init__(self) -> None:
        self._incidents: dict[str, dict[str, Any]] = {}
        self._status: CycleStatus | None = None

    async def send(self, event: EventDoc) -> None:
        inc = event["incident"]
        self._incidents[str(inc["id"])] = dict(inc)

    def status(self, status: CycleStatus) -> None:
        self._status = status

    def incidents(self) -> list[dict[str, Any]]:
        fresh = {str(d["id"]): d for d in self._status.open_incidents()} if self._status else {}
        return [_finite(fresh.get(k, doc)) for k, doc in self._incidents.items()]

    def targets(self) -> list[TargetDoc]:
        return [_finite(t) for t in self._status.targets()] if self._status else []

    async def aclose(self) -> None:
        pass
