"""Helpers for the alerting, actuation and probe tests: a dict StateStore and a loopback receiver that
records every POST (the stand-in for Slack, webhook receivers and actuation endpoints; it speaks their
HTTP protocols, and the docs say it is a double)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class DictStateStore:
    """The StateStore protocol on a dict; ``save`` copies through JSON, as a real store would."""

    def __init__(self) -> None:
        self.docs: dict[str, str] = {}

    async def save(self, key: str, doc: Mapping[str, Any]) -> None:
        self.docs[key] = json.dumps(doc, allow_nan=False)

    async def load(self, key: str) -> dict[str, Any] | None:
        raw = self.docs.get(key)
        return None if raw is None else dict(json.loads(raw))

    async def aclose(self) -> None:
        return None


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        ctype = self.headers.get("Content-Type", "")
        if "x-www-form-urlencoded" in ctype:
            return {k: v[0] for k, v in parse_qs(self.raw.decode()).items()}
        return json.loads(self.raw)


# A reply: (status, JSON-able body). The default answers 200 {"ok": true}.
Reply = tuple[int, Any]


@dataclass
class Receiver:
    url: str
    requests: list[Request] = field(default_factory=list)
    reply: Callable[[Request], Reply] = lambda req: (200, {"ok": True})
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path_prefix: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]


@contextmanager
def receiver(port: int = 0) -> Iterator[Receiver]:
    """A threaded HTTP server on 127.0.0.1 that records each POST and answers with ``Receiver.reply``."""
    rec = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            req = Request(self.path, dict(self.headers), self.rfile.read(n))
            with rec.lock:
                rec.attempts += 1
            status, body = rec.reply(req)
            if status < 500:  # a receiver that failed did not take the request
                with rec.lock:
                    rec.requests.append(req)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
