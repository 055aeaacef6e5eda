"""Fan-out of incident events to every sink, each through its own bounded queue and task.

A slow sink only lengthens its own queue (a full queue drops the newest event for that sink, counted
in ``inferguard_sink_dropped``); it never delays a scrape cycle or another sink. A sink that raises is
logged (``sink.failed``) and counted (``inferguard_sink_failures``), never fatal; a ``SinkError`` is
retried a few times with backoff first, as the Sink protocol promises. Sinks that also implement
:class:`~inferguard.protocols.StatusListener` hear the end of every cycle, synchronously.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from inferguard.errors import ConfigError, SinkError
from inferguard.protocols import CycleStatus, EventDoc, Sink, StatusListener
from inferguard.telemetry import Telemetry

RETRIES = 3
BACKOFF_S = 0.5


class Fanout:
    def __init__(self, sinks: Sequence[Sink], *, log: Any, telemetry: Telemetry, queue_size: int = 1000) -> None:
        names = [s.name for s in sinks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError("sinks", f"duplicate sink name(s): {', '.join(dupes)}")
        self.sinks = list(sinks)
        self.log = log
        self.telemetry = telemetry
        self.failures = 0
        self.dropped = 0
        self._lanes: list[tuple[Sink, MemoryObjectSendStream[EventDoc], MemoryObjectReceiveStream[EventDoc]]] = []
        for sink in self.sinks:
            send, receive = anyio.create_memory_object_stream[EventDoc](max_buffer_size=queue_size)
            self._lanes.append((sink, send, receive))
        self._listeners: list[StatusListener] = [s for s in self.sinks if isinstance(s, StatusListener)]
        self._done = anyio.Event()
        self._running = 0
        self._closed = False

    def start(self, tg: TaskGroup) -> None:
        """One consumer task per sink, in the daemon's task group."""
        for sink, _, receive in self._lanes:
            self._running += 1
            tg.start_soon(self._consume, sink, receive, name=f"sink:{sink.name}")

    def publish(self, event: EventDoc) -> None:
        for sink, send, _ in self._lanes:
            try:
                send.send_nowait(event)
            except anyio.WouldBlock:
                self.dropped += 1
                self.telemetry.sink_dropped.labels(sink.name).inc()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # shutting down: the event came after the last flush

    def status(self, status: CycleStatus) -> None:
        for sink in self._listeners:
            try:
                sink.status(status)
            except Exception as exc:  # a listener's defect must not stop the cycle
                self._failed(cast(Sink, sink), exc)

    async def _consume(self, sink: Sink, receive: MemoryObjectReceiveStream[EventDoc]) -> None:
        try:
            async with receive:
                async for event in receive:
                    await self._deliver(sink, event)
        finally:
            self._running -= 1
            if self._running == 0:
                self._done.set()

    async def _deliver(self, sink: Sink, event: EventDoc) -> None:
        for attempt in range(RETRIES + 1):
            try:
                await sink.send(event)
                return
            except SinkError as exc:
                if attempt == RETRIES:
                    self._failed(sink, exc)
                    return
                await anyio.sleep(BACKOFF_S * 2**attempt)
            except Exception as exc:  # anything else is a defect in the sink: no retry, keep going
                self._failed(sink, exc)
                return

    def _failed(self, sink: Sink, exc: BaseException) -> None:
        self.failures += 1
        self.telemetry.sink_failures.labels(sink.name).inc()
        self.log.error("sink.failed", sink=sink.name, error=f"{type(exc).__name__}: {exc}"[:300])

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Flush what is queued (bounded by ``timeout_s``), then close every sink. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for _, send, _ in self._lanes:
            send.close()
        if self._running:
            with anyio.move_on_after(timeout_s if math.isfinite(timeout_s) else 5.0):
                await self._done.wait()
        for _, _, receive in self._lanes:
            receive.close()  # a lane never started (or cancelled) still owns its stream
        for sink in self.sinks:
            try:
                await sink.aclose()
            except Exception as exc:
                self._failed(sink, exc)
