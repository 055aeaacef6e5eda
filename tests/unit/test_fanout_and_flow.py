"""The fan-out's guards and the flow's use of the incident store, without HTTP.

- a full sink queue drops (and counts) events for that sink only; the others get everything;
- a listener that raises in ``status`` is counted, never fatal; duplicate sink names are refused;
- the proactive checks get the store's recall for their target as ``similar``;
- a refinement lands through ``Flow.apply`` (the one place) and is published as an ``updated`` event.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import anyio
import pytest

from inferguard.brain import BrainStage, DiagnosisUpdate, LocalBrain
from inferguard.config import Settings
from inferguard.errors import ConfigError
from inferguard.logs import configure
from inferguard.protocols import CycleStatus
from inferguard.runtime.build import build_flow
from inferguard.runtime.fanout import Fanout
from inferguard.sources.timeline import read_timeline
from inferguard.telemetry import Telemetry
from inferguard.testing import MemoryStore, RecordingSink

DATA = Path(__file__).resolve().parents[1] / "data"


def doc(i: int) -> dict[str, Any]:
    return {"event": "incident.opened", "changes": [], "incident": {"id": f"inc-{i}", "target": "t"}}


def fanout(*sinks: Any, queue_size: int = 1000) -> Fanout:
    return Fanout(list(sinks), log=configure("json", io.StringIO()), telemetry=Telemetry(), queue_size=queue_size)


async def test_a_full_queue_drops_for_that_sink_only() -> None:
    slow, quick = RecordingSink("slow", delay_s=60.0), RecordingSink("quick")
    out = fanout(slow, quick, queue_size=2)
    async with anyio.create_task_group() as tg:
        out.start(tg)
        for i in range(5):
            out.publish(doc(i))
            await anyio.sleep(0.01)  # the quick sink keeps up; the slow one sits on its first event
        await out.aclose(timeout_s=0.2)
        tg.cancel_scope.cancel()
    assert [e["incident"]["id"] for e in quick.events] == [f"inc-{i}" for i in range(5)]
    # The slow sink took one event into its hands and queued two; the other two were dropped and counted.
    assert out.dropped == 2
    assert out.telemetry.registry.get_sample_value("inferguard_sink_dropped_total", {"sink": "slow"}) == 2
    assert slow.closed and quick.closed


async def test_a_listener_that_raises_is_counted() -> None:
    class Broken(RecordingSink):
        def status(self, status: CycleStatus) -> None:
            raise RuntimeError("a bug in a view")

    out = fanout(Broken("view"))
    out.status(CycleStatus(0.0, 1, list, list, dict))
    await out.aclose()
    assert out.failures == 1


def test_duplicate_sink_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate sink name"):
        fanout(RecordingSink("a"), RecordingSink("a"))


async def test_proactive_checks_get_the_targets_remembered_incidents() -> None:
    flow = build_flow(Settings.load(env_file=None))
    assert isinstance(flow.store, MemoryStore) and flow.stage is not None
    scrapes = [s for s in read_timeline(DATA / "vllm_kv_overload.jsonl.gz")][:12]  # idle and healthy only
    target = scrapes[0].target
    for i in range(3):
        await flow.store.record({"event": "incident.resolved", "changes": [], "incident": {
            "id": f"inc-past-{i}", "target": target, "engine": "vllm-v1", "codes": ["kv_pressure"],
            "opened_at": 100.0 + i, "diagnosis": {"root_cause": "kv_cache_exhaustion"}}})
    await flow.store.record({"event": "incident.resolved", "changes": [], "incident": {
        "id": "inc-elsewhere", "target": "http://other:8000/metrics", "codes": ["kv_pressure"], "opened_at": 1.0}})
    seen: list[list[str]] = []

    def spy(url: str, engine: str, model: str, window: Any, similar: Any, on_answer: Any, **kw: Any) -> bool:
        seen.append([s["id"] for s in similar])
        return True

    flow.stage.investigate = spy  # type: ignore[method-assign]
    for s in scrapes:
        await flow.process(s)
    assert await flow.investigate() == 1
    assert seen == [["inc-past-2", "inc-past-1", "inc-past-0"]]  # this target's, newest first


async def test_a_late_diagnosis_lands_once_through_apply() -> None:
    published: list[dict[str, Any]] = []
    flow = build_flow(Settings.load(env_file=None))
    flow.publish = published.append
    for s in read_timeline(DATA / "vllm_kv_overload.jsonl.gz"):
        await flow.process(s)
    inc = flow.pipeline.book.history[0]
    assert inc.diagnosis is not None and inc.diagnosis["source"] == "rules"
    stage = BrainStage(LocalBrain())
    rules = stage.advise(inc.to_dict(), flow.pipeline.window(inc.target, inc.model), [])
    assert rules is not None
    llm = DiagnosisUpdate(inc.id, {**rules.diagnosis, "source": "llm", "summary": "refined"}, rules.advisories,
                          "llm", "diagnosis:llm")
    before = len(published)
    ev = flow.apply(llm, 2e9)
    assert ev is not None and ev.kind == "updated" and ev.changes == ("diagnosis:llm",)
    assert inc.diagnosis["source"] == "llm" and inc.diagnoses[-1]["source"] == "llm"
    assert flow.apply(llm, 2e9 + 1) is None  # the same answer again changes nothing a person reads
    assert flow.apply(DiagnosisUpdate("inc-unknown", llm.diagnosis, [], "llm", "x"), 2e9) is None
    assert len(published) == before  # apply decides; emit publishes (the daemon's deliver does both)


async def test_a_busy_brain_spares_the_store_its_proactive_recalls() -> None:
    flow = build_flow(Settings.load(env_file=None))
    assert flow.stage is not None
    for s in [s for s in read_timeline(DATA / "vllm_kv_overload.jsonl.gz")][:12]:  # idle and healthy only
        await flow.process(s)
    recalls: list[str | None] = []
    real = flow.store.recall

    async def counting(query: str = "", **kw: Any) -> Any:
        recalls.append(kw.get("target"))
        return await real(query, **kw)

    flow.store.recall = counting  # type: ignore[method-assign]
    flow.stage.max_queued = 0  # a brain whose queue is full
    assert flow.stage.busy and await flow.investigate() == 0
    assert recalls == []
    flow.stage.max_queued = 8
    assert not flow.stage.busy
    await flow.investigate()
    assert len(recalls) == 1


def test_a_cycles_listeners_share_one_build_of_the_open_incidents() -> None:
    from inferguard.runtime.daemon import once

    builds: list[int] = []

    def build() -> list[dict[str, Any]]:
        builds.append(1)
        return [{"id": "inc-1"}]

    docs = once(build)
    first, second = docs(), docs()
    assert first == second == [{"id": "inc-1"}] and len(builds) == 1
    first.append({"id": "mine"})  # a listener's own list: the next listener is not affected
    assert docs() == [{"id": "inc-1"}]


async def test_the_daemon_parses_a_big_page_off_the_event_loop() -> None:
    import threading

    from inferguard.models import Scrape
    from inferguard.runtime.flow import OFFLOAD_PARSE_CHARS

    where: list[str] = []
    for offload in (True, False):
        flow = build_flow(Settings.load(env_file=None))
        flow.offload_parse = offload
        real = flow.pipeline.parse

        def spy(scrape: Scrape, real: Any = real) -> Any:
            where.append(threading.current_thread().name)
            return real(scrape)

        flow.pipeline.parse = spy  # type: ignore[method-assign]
        small = "vllm:num_requests_waiting{model_name=\"m\"} 0\n"
        big = small + "".join(f"other_metric{{i=\"{i}\"}} {i}\n" for i in range(OFFLOAD_PARSE_CHARS // 20))
        for body in (small, big):
            obs = await flow.process(Scrape(target="http://e:8000/metrics", ts=1.0, body=body))
            assert obs.error is None
    main = threading.main_thread().name
    assert where[0] == main and where[1] != main  # offloaded: only the big page leaves the loop's thread
    assert where[2:] == [main, main]  # replay and scan parse in line
