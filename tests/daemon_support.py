"""`inferguard watch` (and the simulator) as subprocesses for the tests of what the daemon sends out: a
process whose JSON log lines are collected, the simulator on a free loopback port, and a loopback engine
that plays back the pages of a recorded real-vLLM timeline, one per scrape."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from inferguard.sources.timeline import read_timeline
from tests.support import Page, free_port, reply, serve, started

ROOT = Path(__file__).resolve().parents[1]


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment (no InferGuard, LLM or Upstash setting of the developer's) with its own state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERGUARD_", "UPSTASH_", "GMI_", "DAYTONA_"))}
    env |= {"INFERGUARD_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(ROOT),
            "INFERGUARD_LOG_FORMAT": "json", **extra}
    return env


class Watch:
    """``inferguard watch ARGS`` whose JSON log lines a thread collects; stop() ends it with SIGTERM."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.err = (cwd / f"stderr-{time.monotonic_ns()}.txt").open("w+")
        self.p = subprocess.Popen([sys.executable, "-m", "inferguard", "watch", *args], stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, env=env, cwd=cwd)
        self._stderr = ""
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.raw.append(line)
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(line))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [x for x in list(self.lines) if x.get("event") == name]

    def wait_for(self, pred: Callable[[], Any], timeout: float, what: str = "") -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = pred()
            if got:
                return got
            if self.p.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{what or 'condition'} not met within {timeout}s; log tail: {''.join(self.raw[-15:])}"
                             f"\nstderr: {self.stderr()[-1500:]}")

    def stderr(self) -> str:
        if self.err.closed:
            return self._stderr
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            code = self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            code = self.p.wait(timeout=10)
        self._t.join(timeout=10)
        assert self.p.stdout is not None
        self.p.stdout.close()
        self._stderr = self.stderr()
        self.err.close()
        return code


@contextlib.contextmanager
def simulator(tmp_path: Path, scenario: str = "healthy", speed: float = 4) -> Iterator[str]:
    """``inferguard simulate`` on a free port; yields its base URL (/metrics, /v1, /admin/scenario). An
    engine_crash keeps the engine down for 20 simulated seconds (5 s at ``speed`` 4): the tests that need
    an incident to stay open until they end it run at speed 1, however slow the machine."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with started([sys.executable, "-m", "inferguard", "simulate", "--scenario", scenario, "--port", str(port),
                  "--speed", str(speed), "--seed", "3"], f"{base}/health", what="simulator", env=env_for(tmp_path),
                 cwd=tmp_path):
        yield base


def set_scenario(base: str, scenario: str) -> None:
    r = httpx.post(f"{base}/admin/scenario", json={"scenario": scenario}, timeout=10, trust_env=False)
    r.raise_for_status()


def _pages(timeline: Path, start: int) -> Callable[[str], Page]:
    """The route of a loopback engine serving the recorded pages of ``timeline`` from index ``start``,
    the next one per GET of /metrics, then the last one for ever."""
    pages = [s.body or "" for s in read_timeline(timeline)][start:]
    at = [0]
    lock = threading.Lock()
    plain = {"Content-Type": "text/plain; version=0.0.4"}

    def route(path: str) -> Page:
        if not path.startswith("/metrics"):
            return 404, b"not found", {"Content-Type": "text/plain"}
        with lock:
            page = pages[min(at[0], len(pages) - 1)]
            at[0] += 1
        return 200, page.encode(), plain

    return route


@contextlib.contextmanager
def playback(timeline: Path, start: int = 0) -> Iterator[str]:
    """A loopback engine serving the recorded pages of ``timeline`` from index ``start``, the next one per
    GET of /metrics, then the last one for ever; yields its /metrics URL."""
    with serve(_pages(timeline, start)) as base:
        yield f"{base}/metrics"


@contextlib.contextmanager
def playback_with_api(timeline: Path, api: str, start: int = 0) -> Iterator[str]:
    """:func:`playback`'s engine with an OpenAI-compatible API on the same host and port, as a real vLLM
    has: /metrics plays back the recorded pages, /v1/... is relayed to ``api`` (the simulator) as it
    streams, the way a reverse proxy in front of an engine would; an ``api`` that is down answers 502.
    Yields the /metrics URL."""

    def relay(handler: BaseHTTPRequestHandler, method: str) -> bool:
        if not handler.path.startswith("/v1/"):
            return False
        n = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(n) if n else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("content-type", "authorization")}
        try:
            with httpx.stream(method, f"{api}{handler.path}", content=body, headers=headers, timeout=30,
                              trust_env=False) as resp:
                handler.send_response(resp.status_code)
                handler.send_header("Content-Type", resp.headers.get("content-type", "application/json"))
                handler.send_header("Connection", "close")  # HTTP/1.0: the body ends when the connection does
                handler.end_headers()
                for chunk in resp.iter_raw():
                    handler.wfile.write(chunk)
                    handler.wfile.flush()
        except httpx.TransportError as exc:
            reply(handler, (502, f"bad gateway: {type(exc).__name__}".encode(), {"Content-Type": "text/plain"}))
        return True

    with serve(_pages(timeline, start), relay=relay) as base:
        yield f"{base}/metrics"
