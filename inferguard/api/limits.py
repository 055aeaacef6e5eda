"""Connection-level limits uvicorn does not have: a deadline for a request's headers and a cap on open
connections that keeps the newest (a probe) over the oldest idle one (a slow client)."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def connection_cap(wanted: int) -> int:
    """At most half the descriptors this process may open: scrapes and files need the rest."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(4, min(wanted, soft // 2 - 16))


def limited_protocol(max_connections: int, header_timeout_s: float,
                     on_evict: Callable[[], None] | None = None) -> type[H11Protocol]:
    """An H11Protocol class bound to these limits (uvicorn instantiates the class it is given)."""

    class Limited(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _opened: float = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._opened = time.monotonic()
            self._arm_header_timer()
            if sum(1 for c in self.connections if not c.transport.is_closing()) > max_connections:
                self._evict()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._header_timer is None and not self._busy():
                self._arm_header_timer()  # the next request on a kept-alive connection
            super().data_received(data)
            if self._busy():
                self._disarm()

        def _busy(self) -> bool:
            cycle: Any = self.cycle
            return cycle is not None and not cycle.response_complete

        def _arm_header_timer(self) -> None:
            cycle_then = self.cycle
            self._header_timer = self.loop.call_later(header_timeout_s, self._header_deadline, cycle_then)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_deadline(self, cycle_then: object) -> None:
            self._header_timer = None
            if self.cycle is cycle_then and not self._busy():
                self.transport.close()  # no complete request line and headers in time

        def _evict(self) -> None:
            # A victim closed moments ago stays in the set until its connection_lost runs: skip it.
            idle = [c for c in self.connections if isinstance(c, Limited) and c is not self and not c._busy()
                    and not c.transport.is_closing()]
            victim = min(idle, key=lambda c: c._opened) if idle else self
            victim.transport.close()
            if on_evict is not None:
                on_evict()

    return Limited


class AcceptErrors:
    """asyncio logs a traceback each time accept() runs out of descriptors; say it once per burst instead."""

    def __init__(self, log: Callable[[int], None], clock: Callable[[], float] = time.monotonic,
                 quiet_s: float = 60.0) -> None:
        self.log, self.clock, self.quiet_s = log, clock, quiet_s
        self.count = 0
        self._last: float | None = None

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if "accept" in str(context.get("message", "")) and isinstance(exc, OSError):
            self.count += 1
            now = self.clock()
            if self._last is None or now - self._last >= self.quiet_s:
                self._last = now
                self.log(self.count)
            return
        loop.default_exception_handler(context)
