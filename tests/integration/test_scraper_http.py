"""The scraper against real HTTP servers on loopback: every failure is a typed reason, never an exception."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import pytest

from inferguard.models import Target
from inferguard.sources.http import HttpScraper
from tests.support import Page, free_port, serve

PAGE = b'# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 3.0\n'
SEEN: list[dict[str, str]] = []
ROUTES: dict[str, Page] = {
    "/ok": PAGE,
    "/gz": (200, gzip.compress(PAGE), {"Content-Encoding": "gzip"}),
    "/500": (500, b"boom", {}),
    "/html": b"<!DOCTYPE html><html><body>login</body></html>",
    "/json": b'{"status": "ok"}',
    "/latin1": b"vllm:x{model_name=\"\xe9\"} 1\n",
    "/big": b"x 1\n" * 100_000,
    "/badgz": (200, b"not gzip at all", {"Content-Encoding": "gzip"}),
}


def route(path: str) -> Page:
    if path == "/slow":
        time.sleep(2)
        return PAGE
    return ROUTES.get(path, (404, b"", {}))


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serve(route, SEEN) as url:
        yield url


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
    assert "Bearer s3cret" in [h.get("Authorization") for h in SEEN]
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
