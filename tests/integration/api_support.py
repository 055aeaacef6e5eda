"""Run the daemon's real HTTP surface (uvicorn on a free loopback port) in a thread, fed by a real
pipeline over a real vLLM recording (tests/data), for the API and dashboard tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

from inferguard.api import ApiOptions, ApiServer, Health
from inferguard.api.listen import Bind
from inferguard.config import Settings
from inferguard.pipeline import Pipeline
from inferguard.runtime.build import build_flow
from inferguard.sinks.readmodel import ReadModel
from inferguard.sources.timeline import read_timeline
from inferguard.telemetry import Telemetry
from tests.support import free_port

DATA = Path(__file__).resolve().parents[1] / "data"


class RecordingLog:
    """The structlog calls the server makes, kept for assertions."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def _add(self, level: str, event: str, **kw: Any) -> None:
        self.lines.append((level, event, kw))

    def error(self, event: str, **kw: Any) -> None:
        self._add("error", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._add("warning", event, **kw)

    def info(self, event: str, **kw: Any) -> None:
        self._add("info", event, **kw)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [kw for _, e, kw in self.lines if e == name]


def replayed_model(name: str = "vllm_kv_overload.jsonl.gz") -> tuple[ReadModel, Pipeline]:
    """A read model fed as the daemon feeds it (events, scrapes), from a recorded real-vLLM incident
    run through the same flow as `replay` (rules only)."""
    flow = build_flow(Settings.load(env_file=None))
    model = ReadModel(window=lambda url, m: flow.pipeline.window(url, m, n=60))
    flow.publish = model.event

    async def run() -> None:
        for scrape in read_timeline(DATA / name):
            obs = await flow.process(scrape)
            main = obs.signals[0] if obs.signals else None
            model.observe(scrape.target, scrape.ts, obs.engine, main.model if main else "", obs.error,
                          main.values if main else None)

    anyio.run(run)
    return model, flow.pipeline


def wait_listening(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port}")


@contextmanager
def running(model: Any, *, token: str | None = None, health: Health | None = None, **opts: Any
            ) -> Iterator[tuple[str, ApiServer, RecordingLog]]:
    port = free_port()
    options = ApiOptions(bind=Bind("127.0.0.1", port), token=token, **opts)
    health = health or Health(30, time.time)
    health.beat()
    log = RecordingLog()
    holder: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> None:
        server = ApiServer(options, Telemetry(), health, model, log, time.time)
        holder["server"], holder["loop"] = server, asyncio.get_running_loop()
        started.set()
        await server.serve()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    wait_listening(port)
    try:
        yield f"http://127.0.0.1:{port}", holder["server"], log
    finally:
        holder["loop"].call_soon_threadsafe(holder["server"].close)
        thread.join(15)
        assert not thread.is_alive(), "the API server did not stop"
