"""What a person is told, on real-vLLM recordings held out from tuning (docs/detectors.md, "Recordings").

These recordings (tests/data, recorded by scripts/record_vllm_timelines.py) were made after the
severity, reopen and diagnosis policies were written from their meaning, and no threshold was fitted to
them. Each test reads an incident's story from its ``events`` and ``diagnoses``, as a post-mortem would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from inferguard.config import Settings
from inferguard.runtime.oneshot import replay_scrapes
from inferguard.sources.timeline import read_timeline

DATA = Path(__file__).resolve().parents[1] / "data"


def load(name: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]], list[float], float]:
    path = DATA / f"{name}.jsonl.gz"
    meta = json.loads((DATA / f"{name}.phases.json").read_text())
    scrapes = list(read_timeline(path))
    incidents = sorted(anyio.run(replay_scrapes, scrapes, Settings.load(env_file=None)), key=lambda i: i["opened_at"])
    return incidents, {p["name"]: p for p in meta["phases"]}, [s.ts for s in scrapes], float(meta["interval_s"])


def notifications(inc: dict[str, Any]) -> list[str]:
    """The events worth telling a person: opened, reopened, resolved, and escalations."""
    return [e["kind"] if e["kind"] != "updated" else "escalated" for e in inc["events"]
            if e["kind"] != "updated" or any(c.startswith("severity ") for c in e["changes"])]


def within_two_scrapes(ts: float, onset: float, times: list[float]) -> bool:
    after = [t for t in times if t >= onset]
    return onset <= ts <= after[1]


def test_start_up_then_a_different_overload_is_two_incidents() -> None:
    incidents, ph, times, interval = load("vllm_startup_admission")
    assert len(incidents) == 2, [(i["codes"], i["opened_at"]) for i in incidents]
    start, overload = incidents
    # The start-up wait: unreachable of its own, no model borrowed, over once the engine answers.
    assert start["codes"] == ["endpoint_unreachable"] and start["model"] == ""
    assert start["diagnosis"]["root_cause"] == "engine_down"
    assert ph["startup"]["start"] <= start["opened_at"] <= ph["startup"]["start"] + 2 * interval
    assert ph["healthy"]["start"] <= start["resolved_at"] <= ph["healthy"]["start"] + 3 * interval
    # The overload is news: its own opening, model and diagnosis, never a flap of the start-up.
    assert overload["flaps"] == 0 and start["flaps"] == 0
    assert within_two_scrapes(overload["opened_at"], ph["overload"]["start"], times)
    assert overload["model"] == "tiny"
    assert {"queue_buildup", "ttft_regression"} <= set(overload["codes"])
    assert not {"kv_pressure", "preemption_storm", "endpoint_unreachable"} & set(overload["codes"])
    # The right diagnosis on the first message, made at the opening scrape, with its advisory.
    first = overload["diagnoses"][0]
    assert (first["ts"], first["root_cause"], first["adopted"]) == (overload["opened_at"], "admission_overload", True)
    assert overload["diagnosis"]["root_cause"] == "admission_overload"
    assert "raise_batch_capacity" in [a["action"] for a in overload["advisories"]]
    # Resolved once the queue is gone, and told in a handful of notifications.
    rec = ph["recovery"]
    assert rec["start"] <= overload["resolved_at"] <= rec["start"] + 10 * interval
    assert notifications(overload)[0] == "opened" and notifications(overload)[-1] == "resolved"
    assert notifications(overload).count("escalated") <= 1 and len(notifications(overload)) <= 3
    assert len(overload["events"]) <= 8  # not one event per scrape (the overload lasted 20 scrapes)


def test_busy_but_healthy_opens_nothing_and_hot_but_coping_is_a_warning() -> None:
    incidents, ph, _, _ = load("vllm_busy_then_hot")
    busy, hot = ph["busy_healthy"], ph["hot_coping"]
    # KV climbing with every burst of long requests, never past the threshold: no incident, forecast or not.
    early = [(i["codes"], round(i["opened_at"] - busy["start"])) for i in incidents if i["opened_at"] < hot["start"]]
    assert early == []
    # Preempting in bursts with no queue and latency flat: efficient use of the GPU, a warning at most.
    codes = set().union(*(set(i["codes"]) for i in incidents)) if incidents else set()
    assert not {"preemption_storm", "queue_buildup"} & codes, codes
    assert all(i["severity"] == "warning" for i in incidents), [(i["codes"], i["severity"]) for i in incidents]
    assert len(incidents) <= 1  # KV swinging 0.3-1.0 is one story, not a string of pages
    for inc in incidents:
        assert [n for n in notifications(inc) if n == "escalated"] == []
        # The first message names the cause the anomaly implies, from the window that opened it.
        first = inc["diagnoses"][0]
        assert (first["ts"], first["root_cause"]) == (inc["opened_at"], "kv_cache_exhaustion")



def test_hot_and_preempting_in_bursts_is_one_kv_warning_not_a_storm() -> None:
    # 24 KV blocks, --max-num-seqs 3, three 440-token requests: KV 0.5-0.96, preemptions in bursts of
    # two, one or two requests waiting for blocks (the preempted ones), never a queue.
    incidents, _, _, _ = load("vllm_hot_preempting")
    assert len(incidents) == 1, [(i["codes"], i["opened_at"]) for i in incidents]  # back within minutes: reopened
    inc = incidents[0]
    assert "kv_pressure" in inc["codes"]
    assert not {"preemption_storm", "queue_buildup"} & set(inc["codes"]), inc["codes"]
    kv_changes = [c for e in inc["events"] for c in e["changes"] if c.startswith("kv_pressure: ")]
    assert kv_changes == [] and all(a["severity"] == "warning" for a in inc["anomalies"] if a["code"] == "kv_pressure")
    # The incident is critical only if users were hurt: here the starved engine stalled (inter-token
    # latency of 19-66 s on two scrapes), and that latency is what escalated it.
    if inc["severity"] == "critical":
        escalated = [e for e in inc["events"] if any(c == "severity warning->critical" for c in e["changes"])]
        assert escalated and any(c in escalated[0]["changes"] for c in ("+itl_regression", "+ttft_regression"))
    first = inc["diagnoses"][0]
    assert (first["ts"], first["root_cause"]) == (inc["opened_at"], "kv_cache_exhaustion")
    assert notifications(inc).count("escalated") <= 1
