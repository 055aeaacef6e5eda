"""A hostile /metrics server on loopback: every way an endpoint can misbehave, one path each.

Used by the tests (``with serve_hostile() as base: ...``) and by benchmarks/bench_hostile_soak.py,
which runs it as a process: ``python -m tests.hostile --port 0`` prints its base URL on stdout and
serves until killed (or ``--duration`` seconds). Everything is bounded: endless streams stop after
``STREAM_CAP`` bytes or when the client hangs up; slow ones after ``SLOW_FOR_S`` seconds.

The pages that look like vLLM V1 are written in its names (``vllm:num_requests_running`` with
``model_name`` and ``engine`` labels) so they get past identification and reach normalisation.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STREAM_CAP = 256 * 1024 * 1024  # endless streams end here (or when the client gives up)
SLOW_FOR_S = 30.0
BOMB_BYTES = 64 * 1024 * 1024  # decoded size of the bombs: 4x the default body cap


def vllm_page(models: list[str], *, kv: float = 0.2, waiting: float = 0.0, extra: str = "") -> str:
    """A small vLLM V1 page with one series per model for each gauge."""
    lines = ["# TYPE vllm:num_requests_running gauge", "# TYPE vllm:num_requests_waiting gauge",
             "# TYPE vllm:kv_cache_usage_perc gauge"]
    for m in models:
        lab = f'model_name="{m}",engine="0"'
        lines += [f"vllm:num_requests_running{{{lab}}} 1", f"vllm:num_requests_waiting{{{lab}}} {waiting}",
                  f"vllm:kv_cache_usage_perc{{{lab}}} {kv}"]
    return "\n".join(lines) + "\n" + extra


HEALTHY = vllm_page(["hostile/healthy"]).encode()


def _bomb(wbits: int, size: int = BOMB_BYTES) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zero = b"\0" * (1 << 20)
    parts = [c.compress(zero) for _ in range(size >> 20)]
    parts.append(c.flush())
    return b"".join(parts)


_CACHE: dict[str, bytes] = {}
_CACHE_LOCK = threading.RLock()


def _cached(key: str, build: Callable[[], bytes]) -> bytes:
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = build()
        return _CACHE[key]


def gzip_bomb() -> bytes:
    return _cached("gzip", lambda: _bomb(31))


def stacked_gzip_bomb() -> bytes:
    return _cached("gzip,gzip", lambda: gzip.compress(gzip_bomb(), 9))


def deflate_bomb() -> bytes:
    return _cached("deflate", lambda: _bomb(15))


def duplicate_series_page() -> bytes:
    # The first value is the one Prometheus keeps; the second (a critical 0.99) must not win.
    return (vllm_page(["hostile/dup"]) + 'vllm:kv_cache_usage_perc{model_name="hostile/dup",engine="0"} 0.99\n'
            ).encode()


def non_monotone_page() -> bytes:
    base = vllm_page(["hostile/buckets"])
    lab = 'model_name="hostile/buckets",engine="0"'
    rows = ["# TYPE vllm:time_to_first_token_seconds histogram"]
    for le, n in (("0.1", 50), ("0.5", 10), ("1.0", 70), ("+Inf", 80)):  # 50 then 10: not cumulative
        rows.append(f'vllm:time_to_first_token_seconds_bucket{{{lab},le="{le}"}} {n}')
    rows += [f"vllm:time_to_first_token_seconds_sum{{{lab}}} 40", f"vllm:time_to_first_token_seconds_count{{{lab}}} 80"]
    return (base + "\n".join(rows) + "\n").encode()


class _State:
    def __init__(self) -> None:
        self.counter = itertools.count()
        self.lock = threading.Lock()

    def next(self) -> int:
        with self.lock:
            return next(self.counter)


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, addr: tuple[str, int]) -> None:
        super().__init__(addr, _Handler)
        self.state = _State()
        self.stopping = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up mid-stream (a size cap, a timeout) is the point of most routes.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked transfer needs 1.1
    server: HostileServer

    def log_message(self, *args: object) -> None:
        pass

    # -- helpers ---------------------------------------------------------------------------------
    def _send(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None,
              length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, chunks: Iterator[bytes], headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        sent = 0
        for chunk in chunks:
            if not chunk:
                continue
            if self.server.stopping.is_set() or sent > STREAM_CAP:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def _drip(self, total_s: float, every_s: float) -> Iterator[bytes]:
        end = time.monotonic() + total_s
        yield HEALTHY[:20]
        while time.monotonic() < end and not self.server.stopping.is_set():
            time.sleep(every_s)
            yield b"#"

    # -- routes ----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # one flat table of routes reads best
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path in ("/healthy", "/metrics"):
            self._send(HEALTHY)
        elif path == "/gzip-bomb":
            self._send(gzip_bomb(), headers={"Content-Encoding": "gzip"})
        elif path == "/gzip-gzip":
            self._send(stacked_gzip_bomb(), headers={"Content-Encoding": "gzip, gzip"})
        elif path == "/gzip-gzip-headers":  # the same, as two separate header lines
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Encoding", "gzip")
            body = stacked_gzip_bomb()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/deflate-bomb":
            self._send(deflate_bomb(), headers={"Content-Encoding": "deflate"})
        elif path == "/chunked-gzip-bomb":
            bomb = gzip_bomb()
            self._chunked((bomb[i:i + 4096] for i in range(0, len(bomb), 4096)), {"Content-Encoding": "gzip"})
        elif path == "/chunked-endless":
            self._chunked(itertools.repeat(b'vllm:num_requests_running{model_name="m"} 1\n' * 1000))
        elif path == "/chunked-empty-gzip":  # tiny decoded, endless on the wire
            self._chunked(itertools.repeat(gzip.compress(b"") * 200), {"Content-Encoding": "gzip"})
        elif path == "/gzip-ok":
            self._send(gzip.compress(HEALTHY), headers={"Content-Encoding": "gzip"})
        elif path == "/gzip-gzip-ok":
            self._send(gzip.compress(gzip.compress(HEALTHY)), headers={"Content-Encoding": "gzip, gzip"})
        elif path == "/deflate-ok":
            self._send(zlib.compress(HEALTHY), headers={"Content-Encoding": "deflate"})
        elif path == "/chunked-ok":
            self._chunked(iter([HEALTHY[:50], HEALTHY[50:]]))
        elif path == "/br":
            self._send(b"\x0b\x02\x80hello\x03", headers={"Content-Encoding": "br"})
        elif path == "/lying-length":  # declares 1 GiB, sends a line, then stalls
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
            self.wfile.write(HEALTHY[:40])
            self.wfile.flush()
            self.server.stopping.wait(SLOW_FOR_S)
            self.close_connection = True
        elif path == "/slow-drip":
            self._chunked(self._drip(SLOW_FOR_S, float(query.get("every", ["0.5"])[0])))
        elif path == "/huge-label":
            value = "x" * int(query.get("size", [str(1 << 20)])[0])
            self._send(vllm_page(["hostile/huge"], extra=f'vllm:num_requests_running{{model_name="{value}"}} 1\n'
                                 ).encode())
        elif path == "/new-models":  # ever-new model names, the names of the last request gone
            n = int(query.get("n", ["20000"])[0])
            k = self.server.state.next()
            self._send(vllm_page([f"hostile/m{k}-{i}" for i in range(n)]).encode())
        elif path == "/many-series":
            n = int(query.get("n", ["200000"])[0])
            rows = "".join(f'vllm:num_requests_running{{model_name="hostile/s",engine="{i}"}} 1\n' for i in range(n))
            self._send((vllm_page(["hostile/s"]) + rows).encode())
        elif path == "/duplicate-series":
            self._send(duplicate_series_page())
        elif path == "/non-monotone":
            self._send(non_monotone_page())
        elif path == "/markup":
            self._send(vllm_page(["[/]", "[bold red]x[/bold red]", "\x1b[31mred"]).encode())
        elif path == "/html":
            self._send(b"<!DOCTYPE html><html><body>login</body></html>", headers={"Content-Type": "text/html"})
        elif path == "/binary":
            self._send(bytes(range(256)) * 64)
        elif path == "/invalid-utf8":
            self._send(b'vllm:num_requests_running{model_name="\xff\xfe"} 1\n')
        elif path == "/empty":
            self._send(b"")
        else:
            self._send(b"not found", status=404)


# Every route, for the soak: each names a path that misbehaves in its own way.
ROUTES = ("/gzip-bomb", "/gzip-gzip", "/gzip-gzip-headers", "/deflate-bomb", "/chunked-gzip-bomb",
          "/chunked-endless", "/chunked-empty-gzip", "/br", "/lying-length", "/slow-drip", "/huge-label",
          "/new-models", "/many-series", "/duplicate-series", "/non-monotone", "/markup", "/html", "/binary",
          "/invalid-utf8", "/empty", "/404")


@contextmanager
def serve_hostile() -> Iterator[str]:
    """Serve on 127.0.0.1:<free port> in a thread; yields the base URL (no trailing slash)."""
    server = HostileServer(("127.0.0.1", 0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--duration", type=float, default=600.0, help="stop after this many seconds")
    args = ap.parse_args(argv)
    for build in (gzip_bomb, stacked_gzip_bomb, deflate_bomb):  # build once, before serving
        build()
    server = HostileServer(("127.0.0.1", args.port))
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Timer(args.duration, server.shutdown).start()
    try:
        server.serve_forever()
    finally:
        server.stopping.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
