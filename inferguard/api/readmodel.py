"""What the API, the dashboard and ``inferguard serve`` read: one small protocol.

The implementation is the read-model sink, :class:`inferguard.sinks.readmodel.ReadModel`, which the
daemon feeds (events through the fan-out, scrapes and cycle status directly). Tests feed it the same way.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ApiReadModel(Protocol):
    def revision(self) -> int: ...

    def targets(self) -> list[dict[str, Any]]: ...

    def incidents(self) -> list[dict[str, Any]]: ...

    def incident(self, incident_id: str) -> dict[str, Any] | None: ...

    async def recall(self, query: str, limit: int) -> dict[str, Any]: ...

    def advisories(self) -> dict[str, Any]: ...

    def silences(self) -> dict[str, Any]: ...

    def actions(self, incident_id: str | None = None) -> dict[str, Any]: ...
