"""Replays of timelines recorded from a real vLLM on this CPU (tests/data, recorded by tests/e2e tooling).

Each scenario states what an on-call engineer must see: detection within two scrapes of the onset,
nothing while idle or healthy, the right diagnosis, resolution after recovery. The same assertions
run on every recording, so re-recording a scenario re-proves it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from inferguard.brain import LocalBrain, build_proactive_payload
from inferguard.config import Settings
from inferguard.pipeline import Pipeline
from inferguard.runtime.oneshot import replay_scrapes
from inferguard.sources.timeline import read_timeline

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class Scenario:
    name: str
    onset: str  # the phase whose start is the incident's onset
    expect: frozenset[str]
    root_cause: str
    forbid: frozenset[str] = field(default_factory=frozenset)
    quiet: tuple[str, ...] = ("idle", "healthy")
    resolved_in: str | None = "recovery"
    allowed: frozenset[str] = frozenset({"ttft_regression", "itl_regression"})  # consequences, not spurious
    first_cause: str | None = None  # the diagnosis on the first message, when the cause shows later


SCENARIOS = [
    Scenario("vllm_kv_overload", "overload", frozenset({"kv_pressure", "preemption_storm", "queue_buildup"}),
             "kv_cache_exhaustion"),
    Scenario("vllm_admission_overload", "overload", frozenset({"queue_buildup", "ttft_regression"}),
             "admission_overload", forbid=frozenset({"kv_pressure", "preemption_storm"})),
    # Down first (engine_down), then back with its counters reset: new evidence names the restart.
    Scenario("vllm_engine_restart", "down", frozenset({"endpoint_unreachable", "engine_restart"}),
             "engine_restarted", forbid=frozenset({"ttft_regression", "itl_regression", "error_rate"}),
             resolved_in="healthy_after", allowed=frozenset(), first_cause="engine_down"),
    Scenario("vllm_prefix_churn", "random", frozenset({"prefix_cache_regression"}), "prefix_cache_thrash",
             quiet=("idle", "shared_prefix"), resolved_in="quiet", allowed=frozenset({"ttft_regression"})),
]


def phases(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.phases.json").read_text())


def replay(name: str) -> tuple[list[dict[str, Any]], list[float]]:
    scrapes = list(read_timeline(DATA / f"{name}.jsonl.gz"))
    incidents = anyio.run(replay_scrapes, scrapes, Settings.load(env_file=None))
    return incidents, [s.ts for s in scrapes]


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.name)
def test_scenario(sc: Scenario) -> None:
    meta = phases(sc.name)
    by_name = {p["name"]: p for p in meta["phases"]}
    onset = by_name[sc.onset]["start"]
    incidents, times = replay(sc.name)
    # Nothing raised while idle or healthy.
    quiet_end = min(by_name[q]["end"] for q in sc.quiet if q in by_name) if sc.quiet else onset
    assert [i for i in incidents if i["opened_at"] < max(quiet_end, onset)] == []
    assert incidents, "the incident was not detected at all"
    first = incidents[0]
    # Detected within two scrapes of its onset.
    after = [t for t in times if t >= onset]
    assert first["opened_at"] <= after[1], (first["opened_at"] - onset, [round(t - onset, 1) for t in after[:3]])
    seen = set().union(*(set(i["codes"]) for i in incidents))
    assert sc.expect <= seen
    assert not (sc.forbid & seen)
    assert seen <= sc.expect | sc.allowed, f"spurious codes {seen - sc.expect - sc.allowed}"
    # One problem, one incident, told in a handful of notifications.
    assert len(incidents) == 1, [(i["codes"], i["opened_at"]) for i in incidents]
    told = [e["kind"] for e in first["events"]
            if e["kind"] != "updated" or any(c.startswith("severity ") for c in e["changes"])]
    assert told[0] == "opened" and told.count("updated") <= 1 and len(told) <= 3, first["events"]
    assert first["diagnosis"]["root_cause"] == sc.root_cause
    assert first["diagnoses"][0]["root_cause"] == (sc.first_cause or sc.root_cause)  # the first message
    assert first["diagnoses"][0]["ts"] == first["opened_at"]
    assert first["diagnosis"]["source"] == "rules"
    assert all(a["advisory_only"] is True for a in first["advisories"])
    if sc.resolved_in:
        rec = by_name[sc.resolved_in]
        assert all(i["resolved_at"] is not None for i in incidents), "still open after recovery"
        assert rec["start"] <= incidents[-1]["resolved_at"] <= rec["end"] + 3 * meta["interval_s"]
        assert told[-1] == "resolved"


@pytest.mark.parametrize("sc", SCENARIOS[:1], ids=lambda s: s.name)
def test_replay_cli_prints_only_the_incidents_json(sc: Scenario, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "inferguard", "replay", str(DATA / f"{sc.name}.jsonl.gz"), "--json"],
                         capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path)
    doc = json.loads(out.stdout)  # stdout is one JSON document and nothing else
    assert list(doc) == ["incidents"]
    expected, _ = replay(sc.name)
    assert [i["fingerprint"] for i in doc["incidents"]] == [i["fingerprint"] for i in expected]
    assert [i["opened_at"] for i in doc["incidents"]] == sorted(i["opened_at"] for i in doc["incidents"])
    for inc in doc["incidents"]:  # each carries its story, in order
        kinds = [e["kind"] for e in inc["events"]]
        assert kinds[0] == "opened" and set(kinds) <= {"opened", "updated", "reopened", "resolved"}
        assert [e["ts"] for e in inc["events"]] == sorted(e["ts"] for e in inc["events"])
        assert all(set(e) == {"ts", "kind", "severity", "changes"} for e in inc["events"])
        assert inc["diagnoses"] and all({"ts", "root_cause", "confidence", "source"} <= set(d)
                                        for d in inc["diagnoses"])


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.name)
def test_no_negative_rates_and_no_invented_values(sc: Scenario) -> None:
    pipeline = Pipeline()
    for scrape in read_timeline(DATA / f"{sc.name}.jsonl.gz"):
        obs = pipeline.observe(scrape)
        if obs.error:
            assert obs.signals == ()  # a failed scrape yields no signals, not zeros
        for s in obs.signals:
            bad = {k: v for k, v in s.values.items() if v < 0 or v != v}
            assert bad == {}, (scrape.ts, bad)


def test_replay_is_deterministic() -> None:
    a, _ = replay(SCENARIOS[0].name)
    b, _ = replay(SCENARIOS[0].name)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.name)
def test_no_proactive_advice_while_idle_or_healthy(sc: Scenario) -> None:
    # Staying quiet includes the proactive path: W1-W4 every 5 scrapes, as `watch` runs it by default.
    onset = {p["name"]: p for p in phases(sc.name)["phases"]}[sc.onset]["start"]
    pipeline = Pipeline()
    nagging = []
    for n, scrape in enumerate(read_timeline(DATA / f"{sc.name}.jsonl.gz"), 1):
        obs = pipeline.observe(scrape)
        if scrape.ts >= onset:
            break
        window = pipeline.window(scrape.target)
        if n % 5 or not obs.signals or len(window) < 3:
            continue
        payload = build_proactive_payload(scrape.target, obs.engine, obs.signals[0].model, window, [])
        answer = LocalBrain().investigate
        result = anyio.run(answer, payload)
        nagging += [(round(scrape.ts - onset), a["action"]) for a in result["advisories"]]
    assert nagging == []


def waiting_by_ts(name: str) -> list[tuple[float, float]]:
    pipeline = Pipeline()
    out = []
    for scrape in read_timeline(DATA / f"{name}.jsonl.gz"):
        for s in pipeline.observe(scrape).signals:
            out.append((scrape.ts, s.values.get("requests_waiting", 0.0)))
    return out


def test_the_drain_of_an_admission_overload_keeps_its_diagnosis_and_severity() -> None:
    # Clients stop sending; the engine works off 28 queued requests two at a time while TTFT climbs.
    meta = phases("vllm_admission_drain")
    ph = {p["name"]: p for p in meta["phases"]}
    incidents, _ = replay("vllm_admission_drain")
    assert len(incidents) == 1, [(i["codes"], i["opened_at"]) for i in incidents]
    inc = incidents[0]
    # Within two scrapes of the first one that shows the queue (the first scrape after the onset came
    # 1.8 s in, before the 30 clients' requests had reached the engine).
    queued = next(t for t, w in waiting_by_ts("vllm_admission_drain") if t >= ph["overload"]["start"] and w >= 8)
    assert queued <= inc["opened_at"] <= queued + meta["interval_s"] + 1
    assert inc["diagnoses"][0]["root_cause"] == "admission_overload"
    # The queue drains while TTFT stays high: that tail must not rewrite the story.
    assert inc["diagnosis"]["root_cause"] == "admission_overload", inc["diagnoses"]
    assert "raise_batch_capacity" in [a["action"] for a in inc["advisories"]]
    end = ph["overload_drain"]["end"]
    assert inc["resolved_at"] is not None and end <= inc["resolved_at"] <= end + 10 * meta["interval_s"]
    told = [e for e in inc["events"] if e["kind"] != "updated" or any(c.startswith("severity ") for c in e["changes"])]
    assert [e["kind"] for e in told] == ["opened", "resolved"] and told[0]["severity"] == "critical"
    # A queue whose wait is measured only when a request leaves it does not flip its severity each time.
    flips = [c for e in inc["events"] for c in e["changes"] if c.startswith("queue_buildup: ")]
    assert len(flips) <= 2, flips
