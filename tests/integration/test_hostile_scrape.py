"""The scraper against the hostile server (tests/hostile.py): every cap holds on real HTTP.

Each cap has a route that only it stops: the declared Content-Length (a server that declares 1 GiB
and stalls: without the check, a timeout), the wire size (endless chunked plain text, and endless
empty gzip members that decode to nothing), and the decoded size of every layer (gzip, deflate and
stacked gzip bombs, with and without Content-Length).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inferguard.models import Target
from inferguard.sources.http import HttpScraper
from tests.hostile import HEALTHY, serve_hostile

CAP = 1 << 20  # 1 MiB: the bombs decode to 64x this


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serve_hostile() as url:
        yield url


async def _scrape(url: str, timeout_s: float = 10.0) -> tuple[str | None, str | None]:
    scraper = HttpScraper(max_body_bytes=CAP, timeout_s=timeout_s)
    try:
        s = await scraper.scrape(Target(url=url))
    finally:
        await scraper.aclose()
    return s.error, s.body


@pytest.mark.parametrize("path", ["/gzip-bomb", "/gzip-gzip", "/gzip-gzip-headers", "/deflate-bomb",
                                  "/chunked-gzip-bomb"])
async def test_decompression_bombs_stop_at_the_decoded_cap(base: str, path: str) -> None:
    assert await _scrape(base + path) == ("too_large", None)


@pytest.mark.parametrize("path", ["/chunked-endless", "/chunked-empty-gzip"])
async def test_endless_chunked_bodies_stop_at_the_wire_cap(base: str, path: str) -> None:
    assert await _scrape(base + path) == ("too_large", None)


async def test_a_declared_length_past_the_cap_is_refused_before_reading(base: str) -> None:
    # The server stalls after 40 bytes: only the Content-Length check answers before the timeout.
    assert await _scrape(base + "/lying-length", timeout_s=5.0) == ("too_large", None)


@pytest.mark.parametrize("path", ["/gzip-ok", "/gzip-gzip-ok", "/deflate-ok", "/chunked-ok", "/healthy"])
async def test_every_supported_encoding_decodes(base: str, path: str) -> None:
    assert await _scrape(base + path) == (None, HEALTHY.decode())


@pytest.mark.parametrize(("path", "reason"), [
    ("/br", "bad_encoding"),  # cannot be inflated within a bound here: refused, not guessed
    ("/html", "not_metrics"), ("/binary", "bad_encoding"), ("/invalid-utf8", "bad_encoding"),
    ("/404", "http_status"),
])
async def test_other_garbage_is_a_typed_failure(base: str, path: str, reason: str) -> None:
    error, body = await _scrape(base + path)
    assert (error, body) == (reason, None)


async def test_slow_drip_is_cut_by_the_timeout(base: str) -> None:
    assert await _scrape(base + "/slow-drip?every=0.2", timeout_s=1.0) == ("timeout", None)


async def test_inflating_runs_off_the_event_loop(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A bomb inflates to the cap for tens of milliseconds per scrape: on the event loop's thread that
    # was most of the daemon's time in the hostile soak, and every other target waited behind it.
    import threading

    from inferguard.sources import decode

    threads: set[str] = set()
    feed = decode.BoundedDecoder.feed

    def spy(self: decode.BoundedDecoder, data: bytes) -> bytes:
        threads.add(threading.current_thread().name)
        return feed(self, data)

    monkeypatch.setattr(decode.BoundedDecoder, "feed", spy)
    assert await _scrape(base + "/gzip-gzip") == ("too_large", None)
    assert await _scrape(base + "/gzip-ok") == (None, HEALTHY.decode())
    assert threads and threading.main_thread().name not in threads
