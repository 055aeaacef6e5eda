"""Small real-HTTP helpers shared by the tests: a loopback page server, free ports, a clean environment,
the `inferguard` command run in it, and a server process started and stopped around a test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]

# What a route returns: a body (200), or (status, body, extra headers).
Page = bytes | tuple[int, bytes, dict[str, str]]


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (a timeout or size-cap test) is expected; anything else is reported.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def reply(handler: BaseHTTPRequestHandler, page: Page) -> None:
    """Write ``page`` (a body, or status, body and extra headers) as the handler's whole response."""
    status, body, headers = (200, page, {}) if isinstance(page, bytes) else page
    handler.send_response(status)
    for k, v in headers.items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


# Answers a request itself (e.g. relays it, streaming) and says whether it did: (handler, method) -> bool.
Relay = Callable[[BaseHTTPRequestHandler, str], bool]


@contextmanager
def serve(route: Callable[[str], Page], seen: list[dict[str, str]] | None = None, *,
          relay: Relay | None = None) -> Iterator[str]:
    """Serve ``route(path)`` on 127.0.0.1:<free port> in a thread; yields the base URL. Request headers
    are appended to ``seen`` when given. With ``relay``, each GET and POST goes to it first; a GET it
    does not answer goes to ``route``, a POST is 404 (without ``relay`` POST is not served at all)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if seen is not None:
                seen.append(dict(self.headers))
            if relay is None or not relay(self, "GET"):
                reply(self, route(self.path))

        if relay is not None:
            def do_POST(self) -> None:
                if relay is not None and not relay(self, "POST"):
                    reply(self, (404, b"not found", {"Content-Type": "text/plain"}))

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The environment without any InferGuard or LLM setting a developer may have exported, and with a
    fresh state directory (incident memory) of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERGUARD_", "GMI_", "UPSTASH_"))}
    env["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="inferguard-test-state-")
    env.pop("STATE_DIRECTORY", None)
    return env


def run_inferguard(state: Path, *args: str, env: dict[str, str] | None = None,
                   timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``inferguard ARGS`` as a user runs it: this checkout's code, in the folder above ``state`` (its state
    directory), with :func:`clean_env` plus ``env``; its output captured as text."""
    full = clean_env() | {"INFERGUARD_STATE_DIR": str(state), "PYTHONPATH": str(ROOT)} | (env or {})
    return subprocess.run([sys.executable, "-m", "inferguard", *args], env=full, cwd=state.parent,
                          capture_output=True, text=True, timeout=timeout)


def run_in_pty(argv: list[str], *, columns: int, cwd: str, env: dict[str, str] | None = None,
               timeout: float = 60.0, lines: int = 40) -> tuple[int, str]:
    """Run ``argv`` with stdin/stdout/stderr on a real pseudo-terminal of ``columns`` x ``lines``;
    returns (exit code, everything it wrote, decoded)."""
    import fcntl
    import pty
    import select
    import struct
    import subprocess
    import termios
    import time

    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    env = dict(env if env is not None else clean_env())
    env.update(COLUMNS=str(columns), LINES=str(lines), TERM="xterm-256color")
    proc = subprocess.Popen(argv, stdin=sub, stdout=sub, stderr=sub, env=env, cwd=cwd, close_fds=True)
    os.close(sub)
    chunks = []
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=15)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    return rc, b"".join(chunks).decode("utf-8", "replace")


@contextmanager
def started(argv: list[str], ready_url: str, *, what: str, timeout_s: float = 30.0,
            env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Run a server process for the block: wait until ``ready_url`` answers 200 (the test fails with the
    tail of the process's output if it exits or is not ready within ``timeout_s``), stop it after.
    Output goes to a temporary file, so a chatty server never blocks on a full pipe."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    if httpx.get(ready_url, timeout=1, trust_env=False).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    out.seek(0)
                    pytest.fail(f"{what} did not start: {out.read().decode(errors='replace')[-2000:]}")
                time.sleep(0.1)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
