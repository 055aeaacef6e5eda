"""The log sink: one structured line per incident transition (``incident.opened|updated|resolved``)."""

from __future__ import annotations

from typing import Any

from inferguard.protocols import EventDoc


class LogSink:
    name = "log"

    def __init__(self, log: Any) -> None:
        self.log = log

    async def send(self, event: EventDoc) -> None:
        self.log.warning(str(event["event"]), changes=list(event.get("changes", [])), incident=event["incident"])

    async def aclose(self) -> None:
        pass
