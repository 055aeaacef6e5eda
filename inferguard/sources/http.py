"""Scraping /metrics over HTTP: one httpx client per process, typed failures, never an exception."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import httpx

from inferguard.models import Scrape, Target
from inferguard.sources.decode import BodyTooLarge, BoundedDecoder, UnsupportedEncoding

ACCEPT = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
_HTML_PREFIXES = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")


class HttpScraper:
    """Scrapes targets with bounded concurrency. Every failure becomes a Scrape with a typed ``error``."""

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        max_body_bytes: int = 16 * 1024 * 1024,
        concurrency: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self._clock = clock
        self._limit = anyio.CapacityLimiter(concurrency)
        # Inflating runs in a worker thread, one chunk at a time: zlib releases the GIL, so a bomb being
        # inflated to the cap (tens of milliseconds) never holds the event loop, and only one chunk's
        # layers (each at most the cap) are being inflated at any moment. What a page has inflated so far
        # stays with its scrape, bounded by the cap like any body.
        self._inflate = anyio.CapacityLimiter(1)
        # trust_env=False: a monitor must not be silently rerouted by proxy variables.
        self._client = httpx.AsyncClient(
            transport=transport, trust_env=False, follow_redirects=False,
            headers={"Accept": ACCEPT, "Accept-Encoding": "gzip, deflate", "User-Agent": "inferguard/0.1"},
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    async def scrape(self, target: Target) -> Scrape:
        async with self._limit:
            return await self._scrape(target)

    async def _scrape(self, target: Target) -> Scrape:
        started = time.perf_counter()
        ts = self._clock()
        headers = {"Authorization": f"Bearer {target.bearer_token}"} if target.bearer_token else None
        timeout = target.timeout_s or self.timeout_s

        def fail(reason: str, status: int | None = None, detail: str = "") -> Scrape:
            return Scrape(target=target.url, ts=ts, status=status, error=reason,
                          duration_s=time.perf_counter() - started, detail=detail)

        try:
            with anyio.fail_after(timeout):
                async with self._client.stream("GET", target.request_url or target.url, headers=headers,
                                               timeout=timeout) as resp:
                    if resp.status_code != 200:
                        return fail("http_status", resp.status_code)
                    limit = self.max_body_bytes
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > limit:
                        return fail("too_large", resp.status_code)
                    try:
                        decoder = BoundedDecoder(
                            resp.headers.get_list("content-encoding", split_commas=True), limit)
                    except UnsupportedEncoding:
                        return fail("bad_encoding", resp.status_code)
                    chunks: list[bytes] = []
                    size = 0
                    try:
                        # Raw bytes, decoded by us: both the wire size and every decoded layer are
                        # capped (a stream of empty gzip members is small decoded, endless raw).
                        async for raw_chunk in resp.aiter_raw():
                            size += len(raw_chunk)
                            if size > limit:
                                return fail("too_large", resp.status_code)
                            if decoder.identity:
                                chunks.append(raw_chunk)
                            else:
                                chunks.append(await anyio.to_thread.run_sync(
                                    decoder.feed, raw_chunk, limiter=self._inflate))
                        decoder.finish()
                    except BodyTooLarge:
                        return fail("too_large", resp.status_code)
                    except UnsupportedEncoding:
                        return fail("bad_encoding", resp.status_code)
        except TimeoutError:
            return fail("timeout")
        except httpx.TimeoutException:
            return fail("timeout")
        except httpx.ConnectError as exc:
            if "refused" in str(exc).lower() or _is_refused(exc):
                return fail("refused")
            return fail("connect", detail=_first_line(exc))
        except httpx.DecodingError:
            return fail("bad_encoding")
        except (httpx.HTTPError, OSError) as exc:
            return fail("connect", detail=type(exc).__name__)
        raw = b"".join(chunks)
        head = raw[:64].lstrip().lower()
        if head.startswith(_HTML_PREFIXES):
            return fail("not_metrics", 200, "an HTML page")
        if head.startswith((b"{", b"[")):
            return fail("not_metrics", 200, "a JSON document")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return fail("bad_encoding", 200)
        return Scrape(target=target.url, ts=ts, status=200, body=body, duration_s=time.perf_counter() - started)

    async def aclose(self) -> None:
        await self._client.aclose()


def _first_line(exc: BaseException) -> str:
    # DNS and TLS failures say what went wrong in their message; URLs in it carry no userinfo here.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _is_refused(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
