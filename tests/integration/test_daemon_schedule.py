"""The daemon's schedule, health and shutdown, against real loopback HTTP.

- A target that hangs (its own timeout far longer than its interval) never stretches the others'
  cycles: its scrape has a hard deadline, and the cycle waits for it at most one tick.
- /healthz turns unhealthy (503, ``stalled``) when cycles stop finishing, and healthy again after.
- SIGTERM always finishes, even with a scrape hanging, and the recorded timeline is complete; a second
  SIGTERM during shutdown is received and ignored.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from inferguard.config import Settings
from inferguard.models import Target
from inferguard.runtime import build
from inferguard.runtime.build import build_daemon
from inferguard.runtime.daemon import DaemonOptions
from inferguard.sources.timeline import read_timeline
from inferguard.testing import RecordingSink
from tests.support import clean_env, free_port, serve

PAGE = b"""# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.2
"""


@pytest.fixture
def fast() -> Iterator[str]:
    with serve(lambda _: PAGE) as base:
        yield base + "/metrics"


@pytest.fixture
def hanging() -> Iterator[str]:
    """An engine that accepts the connection and never answers (until the test ends)."""
    release = threading.Event()

    def page(_: str) -> bytes:
        release.wait(60)
        return PAGE

    with serve(page) as base:
        yield base + "/metrics"
        release.set()


async def run_until(daemon: Any, done: Callable[[], bool]) -> None:
    """Run the daemon until ``done()``: stop on what happened, not on a wall-clock guess (the daemon's own
    duration only bounds a broken one)."""
    async def stop_when_done() -> None:
        while not done():
            await anyio.sleep(0.05)
        daemon.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_when_done)
        await daemon.run()
        tg.cancel_scope.cancel()


async def test_a_hanging_target_never_stretches_the_others(fast: str, hanging: str) -> None:
    out = io.StringIO()
    settings = Settings.load(env_file=None, brain={"proactive_cycle_every": 0})
    slow = Target(url=hanging, interval_s=1.5, timeout_s=3600.0)  # a timeout far past its interval
    daemon = build_daemon(settings, [Target(url=fast), slow],
                          DaemonOptions(interval_s=0.3, listen=None, duration_s=60.0, log_format="json", out=out))
    assert daemon.deadline(slow) == 1.5  # the hard deadline is the interval, not the hour
    reg = daemon.telemetry.registry

    def count(target: str, result: str) -> float:
        return reg.get_sample_value("inferguard_scrapes_total", {"target": target, "result": result}) or 0.0

    await run_until(daemon, lambda: count(hanging, "timeout") >= 2)  # two of its deadlines have passed
    assert count(hanging, "timeout") >= 2, "the hanging target never reached its deadline"
    cycles = [e for e in (json.loads(line) for line in out.getvalue().splitlines()) if e["event"] == "cycle"]
    assert any(c.get("still_in_flight") for c in cycles)  # the hanging target was left to finish alone
    # Two of its 1.5 s deadlines are at least 3 s of its 0.3 s neighbour's schedule: ten scrapes, and even
    # a busy machine gets half. A cycle that waited for the hanging scrape would allow about two.
    assert count(fast, "ok") >= 5, [round(c["duration_ms"]) for c in cycles]
    # Never two scrapes of one target at once: each start waited for the previous one to land.
    assert count(hanging, "timeout") <= 3


async def test_healthz_turns_unhealthy_when_cycles_stall(fast: str) -> None:
    port = free_port()
    settings = Settings.load(env_file=None, brain={"proactive_cycle_every": 0})
    daemon = build_daemon(settings, [Target(url=fast)],
                          DaemonOptions(interval_s=0.3, listen=f"127.0.0.1:{port}", log_format="json",
                                        out=io.StringIO(), stall_after_s=1.0))
    stall, unstall = anyio.Event(), anyio.Event()
    real_cycle = daemon.cycle

    async def cycle() -> Any:
        if stall.is_set():
            await unstall.wait()  # a cycle that does not finish (the loop itself is alive)
        return await real_cycle()

    daemon.cycle = cycle  # type: ignore[method-assign]
    seen: list[tuple[int, bool]] = []

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5) as client:

            async def healthz() -> tuple[int, bool]:
                r = await client.get("/healthz")
                return r.status_code, r.json()["stalled"]

            with anyio.fail_after(20):
                while daemon.health.cycles < 3:
                    await anyio.sleep(0.1)
                seen.append(await healthz())
                stall.set()
                while (got := await healthz())[0] == 200:
                    await anyio.sleep(0.2)
                seen.append(got)
                assert (await client.get("/readyz")).status_code == 503
                unstall.set()
                while (got := await healthz())[0] != 200:
                    await anyio.sleep(0.2)
                seen.append(got)
        daemon.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe)
        await daemon.run()
    assert seen == [(200, False), (503, True), (200, False)]


def test_sigterm_finishes_with_a_scrape_hanging_and_the_timeline_complete(fast: str, hanging: str,
                                                                           tmp_path: Path) -> None:
    record = tmp_path / "seen.jsonl.gz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferguard", "watch", fast, hanging, "--interval", "0.3", "--no-listen",
         "--record", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(x) for x in proc.stdout), daemon=True)
    reader.start()
    try:
        end = time.monotonic() + 30
        while sum(1 for x in lines if x.get("event") == "cycle") < 4 and time.monotonic() < end:
            time.sleep(0.1)
        assert sum(1 for x in lines if x.get("event") == "cycle") >= 4, lines
        proc.send_signal(signal.SIGTERM)  # a scrape of the hanging target is in flight now
        proc.send_signal(signal.SIGTERM)  # and a second one at once (the next test times it into shutdown)
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert rc == 0, err
    assert "Traceback" not in err, err
    stopping = [x for x in lines if x.get("event") == "watch.stopping"]
    assert stopping and stopping[0]["signal"] == "SIGTERM"
    stopped = next(x for x in lines if x.get("event") == "watch.stopped")
    # The timeline is a complete gzip file holding every scrape the daemon processed.
    recorded = list(read_timeline(record))
    assert len(recorded) >= stopped["scrapes"] >= 4
    assert {s.target for s in recorded} >= {fast}


async def test_a_second_sigterm_during_shutdown_is_ignored(fast: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # In this process: if the handler were gone during shutdown, the second SIGTERM would kill pytest.
    kv = PAGE.replace(b"} 0.2", b"} 0.99")
    with serve(lambda _: kv) as base:
        slow = RecordingSink("slow", delay_s=1.5)  # keeps the shutdown busy flushing it
        monkeypatch.setitem(build.SINKS, "slow", lambda s, ctx: slow)
        out = io.StringIO()
        settings = Settings.load(env_file=None, brain={"proactive_cycle_every": 0})
        daemon = build.build_daemon(settings, [Target(url=base + "/metrics")],
                                    DaemonOptions(interval_s=0.3, listen=None, log_format="json", out=out))

        def logged(event: str) -> list[dict[str, Any]]:
            return [e for e in map(json.loads, out.getvalue().splitlines()) if e["event"] == event]

        async def driver() -> None:
            with anyio.fail_after(30):
                while daemon.flow.counts["opened"] < 1:
                    await anyio.sleep(0.1)
                os.kill(os.getpid(), signal.SIGTERM)
                while not logged("watch.stopping"):
                    await anyio.sleep(0.05)
                await anyio.sleep(0.3)  # the loop has stopped; the slow sink is being flushed
                os.kill(os.getpid(), signal.SIGTERM)

        async with anyio.create_task_group() as tg:
            tg.start_soon(driver)
            summary = await daemon.run()
    stopping = logged("watch.stopping")
    assert [e.get("repeated") for e in stopping] == [None, 2]
    assert summary["opened"] == 1 and logged("watch.stopped")
    assert slow.events and slow.closed  # the flush went on after the second signal


async def test_a_cycle_with_a_straggler_ends_well_before_the_next_tick(fast: str, hanging: str) -> None:
    # A cycle that waited a whole tick for a slow scrape ended just after the next tick was due; the loop
    # skipped that tick, so every target was scraped every other tick (a soak saw the healthy one at 4 s
    # instead of 2). Half a tick is the most a cycle waits.
    out = io.StringIO()
    settings = Settings.load(env_file=None, brain={"proactive_cycle_every": 0})
    daemon = build_daemon(settings, [Target(url=fast), Target(url=hanging)],
                          DaemonOptions(interval_s=4.0, listen=None, duration_s=60.0, log_format="json", out=out))

    def cycles() -> list[dict[str, Any]]:
        return [e for e in (json.loads(line) for line in out.getvalue().splitlines()) if e["event"] == "cycle"]

    await run_until(daemon, lambda: bool(cycles()))
    assert daemon.flow.offload_parse  # and big pages are parsed off the loop (tests/unit/test_fanout_and_flow.py)
    first = cycles()[0]
    assert first["scraped"] == 2
    assert first["duration_ms"] < 3000, first  # half the 4 s tick plus slack for a busy machine; a tick is 4000
