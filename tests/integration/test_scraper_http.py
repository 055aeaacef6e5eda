"""The scraper against real HTTP servers on loopback: every failure is a typed reason, never an exception."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inferguard.models import Target
from inferguard.sources.http import HttpScraper

PAGE = b'# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 3.0\n'
SEEN_AUTH: list[str | None] = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        SEEN_AUTH.append(self.headers.get("Authorization"))
        routes = {
            "/ok": (200, PAGE, {}),
            "/gz": (200, gzip.compress(PAGE), {"Content-Encoding": "gzip"}),
            "/500": (500, b"boom", {}),
            "/html": (200, b"<!DOCTYPE html><html><body>login</body></html>", {}),
            "/json": (200, b'{"status": "ok"}', {}),
            "/latin1": (200, b"vllm:x{model_name=\"\xe9\"} 1\n", {}),
            "/big": (200, b"x 1\n" * 100_000, {}),
            "/badgz": (200, b"not gzip at all", {"Content-Encoding": "gzip"}),
        }
        if self.path == "/slow":
            time.sleep(2)
            code, body, headers = 200, PAGE, {}
        else:
            code, body, headers = routes.get(self.path, (404, b"", {}))
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/500", "http_status"), ("/404", "http_status"), ("/html", "not_metrics"), ("/json", "not_metrics"),
     ("/latin1", "bad_encoding"), ("/big", "too_large"), ("/badgz", "bad_encoding")],
)
async def test_typed_failures(base: str, path: str, reason: str) -> None:
    scraper = HttpScraper(max_body_bytes=200_000)
    try:
        s = await scraper.scrape(Target(url=base + path))
    finally:
        await scraper.aclose()
    assert s.error == reason and s.body is None


async def test_ok_plain_and_gzip_with_bearer_token(base: str) -> None:
    scraper = HttpScraper(clock=lambda: 1234.5)
    try:
        plain = await scraper.scrape(Target(url=base + "/ok", bearer_token="s3cret"))
        zipped = await scraper.scrape(Target(url=base + "/gz"))
    finally:
        await scraper.aclose()
    assert plain.ok and plain.body == PAGE.decode() and plain.ts == 1234.5
    assert zipped.ok and zipped.body == PAGE.decode()
    assert "Bearer s3cret" in SEEN_AUTH
    assert "s3cret" not in repr(Target(url=base, bearer_token="s3cret"))


async def test_timeout_and_refused(base: str) -> None:
    scraper = HttpScraper(timeout_s=0.3)
    try:
        slow = await scraper.scrape(Target(url=base + "/slow"))
        refused = await scraper.scrape(Target(url=f"http://127.0.0.1:{free_port()}/metrics"))
    finally:
        await scraper.aclose()
    assert slow.error == "timeout"
    assert refused.error == "refused"
