"""The composition root and the fan-out, against a real loopback engine page.

- Adding a sink is one entry in ``build.SINKS`` (plus its module): here the recording sink of
  ``inferguard.testing`` hears every incident event of a real ``watch`` run, with no daemon change.
- A slow sink never delays a scrape cycle; a sink that raises is logged and counted, never fatal.
- Every event is recorded in the incident store, and the store's recall is what the brain gets as
  ``similar`` (incident payloads and the proactive checks).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from inferguard.config import Settings
from inferguard.models import Target
from inferguard.protocols import CycleStatus
from inferguard.runtime import build
from inferguard.runtime.daemon import Daemon, DaemonOptions
from inferguard.testing import MemoryStore, RecordingSink
from tests.support import serve

PAGE = """# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 30.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 38.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.99
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} NUM
"""


@pytest.fixture
def engine() -> Iterator[str]:
    count = [0]

    def page(_: str) -> bytes:
        count[0] += 15  # a preemption storm: the counter climbs every scrape
        return PAGE.replace("NUM", f"{count[0]}.0").encode()

    with serve(page) as base:
        yield base + "/metrics"


def settings(**brain: Any) -> Settings:
    return Settings.load(env_file=None, brain={"proactive_cycle_every": 0, **brain})


async def run(url: str, seconds: float, **brain: Any) -> tuple[Daemon, list[dict[str, Any]]]:
    out = io.StringIO()
    daemon = build.build_daemon(settings(**brain), [Target(url=url)],
                                DaemonOptions(interval_s=0.3, listen=None, duration_s=seconds, log_format="json",
                                              out=out))
    await daemon.run()
    return daemon, [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_new_sink_is_one_registry_entry(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = RecordingSink()
    monkeypatch.setitem(build.SINKS, "recording", lambda s, ctx: sink)
    _, events = await run(engine, 2.0)
    logged = [e for e in events if e["event"].startswith("incident.")]
    assert logged and sink.events, "no incident reached the sinks"
    # The same documents, in the same order, as the log sink wrote.
    assert [e["event"] for e in sink.events] == [e["event"] for e in logged]
    assert [e["incident"]["id"] for e in sink.events] == [e["incident"]["id"] for e in logged]
    assert sink.events[0]["incident"]["diagnosis"]["source"] == "rules"
    assert sink.closed  # closed at shutdown, after the flush


async def test_a_sink_that_is_not_a_sink_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from inferguard.errors import ConfigError

    monkeypatch.setitem(build.SINKS, "broken", lambda s, ctx: object())
    with pytest.raises(ConfigError, match=r"sinks\.broken"):
        build.build_sinks(settings(), build.SinkContext(log=None, telemetry=None))  # type: ignore[arg-type]


async def test_a_slow_or_failing_sink_never_holds_the_loop(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = RecordingSink("slow", delay_s=30.0)  # far longer than the whole run
    failing = RecordingSink("failing", fail=True)
    monkeypatch.setitem(build.SINKS, "slow", lambda s, ctx: slow)
    monkeypatch.setitem(build.SINKS, "failing", lambda s, ctx: failing)
    monkeypatch.setattr("inferguard.runtime.fanout.BACKOFF_S", 0.01)
    daemon, events = await run(engine, 2.4)
    cycles = [e for e in events if e["event"] == "cycle"]
    assert len(cycles) >= 6  # 0.3 s cycles carried on while one sink slept and another raised
    opened = [e for e in events if e["event"] == "incident.opened"]
    assert opened, "the log sink (its own lane) still wrote the incident"
    failures = [e for e in events if e["event"] == "sink.failed"]
    assert failures and {e["sink"] for e in failures} == {"failing"}
    assert failing.attempts == 4 * len(failures)  # SinkError is retried three times, then counted
    assert daemon.telemetry.registry.get_sample_value("inferguard_sink_failures_total",
                                                      {"sink": "failing"}) == len(failures)
    assert slow.events == []  # still asleep on its first event when the flush deadline passed
    assert any(e["event"] == "watch.stopped" for e in events)


async def test_events_are_recorded_and_recalled_as_similar(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    past = {"id": "inc-past", "fingerprint": "f" * 16, "target": engine, "engine": "vllm-v1", "model": "m",
            "codes": ["kv_pressure", "preemption_storm", "queue_buildup"], "opened_at": 1.0, "resolved_at": 2.0,
            "anomalies": [], "diagnosis": {"root_cause": "kv_cache_exhaustion"}}
    await store.record({"event": "incident.resolved", "changes": [], "incident": past})
    monkeypatch.setattr(build, "build_store", lambda s, **_: store)
    seen: list[Any] = []
    real = build.BrainStage.advise

    def spy(self: Any, incident: Any, window: Any, similar: Any, deliver: Any = None) -> Any:
        seen.append([s["id"] for s in similar])
        return real(self, incident, window, similar, deliver)

    monkeypatch.setattr(build.BrainStage, "advise", spy)
    _, events = await run(engine, 2.0)
    opened = next(e for e in events if e["event"] == "incident.opened")
    assert opened["incident"]["id"] in store.incidents  # every event is recorded
    assert store.recorded >= 1 + len([e for e in events if e["event"].startswith("incident.")])
    assert seen and seen[0] == ["inc-past"]  # the brain was given what the store recalled


async def test_a_failing_store_is_logged_and_monitoring_goes_on(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from inferguard.errors import MemoryBackendError

    class Down(MemoryStore):
        async def record(self, event: Any) -> None:
            raise MemoryBackendError("connection refused")

        async def recall(self, *a: Any, **kw: Any) -> list[dict[str, Any]]:
            raise MemoryBackendError("connection refused")

    monkeypatch.setattr(build, "build_store", lambda s, **_: Down())
    _, events = await run(engine, 1.5)
    assert len([e for e in events if e["event"] == "cycle"]) >= 4
    assert any(e["event"] == "incident.opened" for e in events)
    failed = [e for e in events if e["event"] == "store.failed"]
    assert {e["verb"] for e in failed} == {"record", "recall"}


class StatusSink(RecordingSink):
    """A recording sink that also hears the end of every cycle, as the live view and the API do."""

    def __init__(self) -> None:
        super().__init__("status")
        self.brains: list[dict[str, Any]] = []

    def status(self, status: CycleStatus) -> None:
        self.brains.append(status.brain())


async def test_every_cycle_tells_the_listeners_what_the_brain_did(engine: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sink = StatusSink()
    monkeypatch.setitem(build.SINKS, "status", lambda s, ctx: sink)
    await run(engine, 1.5)
    assert sink.brains, "no cycle status reached the listener"
    # The live view's brain lines (failures, proactive advisories) read exactly these keys.
    assert all({"failures", "last_error", "proactive"} <= set(b) for b in sink.brains), sink.brains[-1]


async def test_the_daemon_sets_the_allocator_before_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without it RSS ratchets up with the biggest page ever freed (runtime/allocator.py; the hostile soak).
    seen: list[str] = []
    monkeypatch.setattr(build.allocator, "tame", lambda: seen.append("called") or "spied")
    await run("http://127.0.0.1:9/metrics", 0.5)
    assert seen == ["called"]
