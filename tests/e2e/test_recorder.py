"""The harness recorder against real loopback HTTP: what it writes is what inferguard reads back.

No engine needed (fast); it guards the format of tests/data/vllm_*.jsonl.gz and the failure reasons.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from inferguard.sources.timeline import read_timeline
from tests.e2e.harness import free_port, record

PAGE = "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"tiny\"} 3.0\n"


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[int]]]:
    """Serves PAGE; the test sets codes[0] to change the status, codes[1] > 0 to stall that many ms."""
    codes = [200, 0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if codes[1]:
                time.sleep(codes[1] / 1000)
            body = PAGE.encode() if codes[0] == 200 else b"busy"
            self.send_response(codes[0])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics", codes
    server.shutdown()
    server.server_close()


async def run_for(url: str, out: Path, seconds: float, timeout: float = 5.0) -> int:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    return await record(url, out, interval=0.2, stop=stop, timeout=timeout)


async def test_scrapes_and_status_errors_round_trip(endpoint: tuple[str, list[int]], tmp_path: Path) -> None:
    url, codes = endpoint
    out = tmp_path / "t.jsonl.gz"
    stop = asyncio.Event()
    task = asyncio.create_task(record(url, out, interval=0.2, stop=stop))
    await asyncio.sleep(0.5)
    codes[0] = 503
    await asyncio.sleep(0.5)
    stop.set()
    n = await task
    with gzip.open(out, "rt") as fh:
        rows = [json.loads(line) for line in fh]
    assert len(rows) == n >= 4
    assert rows[0] == {"ts": rows[0]["ts"], "target": url, "status": 200, "metrics": PAGE}
    assert rows[-1] == {"ts": rows[-1]["ts"], "target": url, "status": 503, "error": "http_status"}
    scrapes = list(read_timeline(out))  # inferguard's own reader accepts every line
    assert [s.ok for s in scrapes] == ["metrics" in r for r in rows]
    assert [s.ts for s in scrapes] == sorted(s.ts for s in scrapes)


async def test_refused_and_timeout_reasons(endpoint: tuple[str, list[int]], tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    await run_for(dead, tmp_path / "dead.jsonl", 0.5)
    assert {json.loads(x)["error"] for x in (tmp_path / "dead.jsonl").read_text().splitlines()} == {"refused"}

    url, codes = endpoint
    codes[1] = 600  # slower than the timeout below
    await run_for(url, tmp_path / "slow.jsonl", 0.5, timeout=0.2)
    assert {json.loads(x)["error"] for x in (tmp_path / "slow.jsonl").read_text().splitlines()} == {"timeout"}


async def test_time_is_the_injected_clock_on_a_fixed_grid(endpoint: tuple[str, list[int]], tmp_path: Path) -> None:
    url, _ = endpoint
    ticks = iter(range(1000, 2000))
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.05, stop.set)
    n = await record(url, tmp_path / "c.jsonl", interval=0.2, stop=stop, clock=lambda: float(next(ticks)))
    rows = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [r["ts"] for r in rows] == [float(1000 + i) for i in range(n)]
    # One scrape per 0.2 s slot over ~1 s and never a burst to catch up: a loaded machine may manage
    # fewer slots, never more.
    assert 1 <= n <= 7
