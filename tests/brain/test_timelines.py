"""The rules on windows of real vLLM recordings (tests/data/vllm_*.jsonl.gz, recorded on this machine by
the e2e harness), one window per recorded phase, with no detector anomaly attached: the rules must read
the cause from the signals alone. The signals come from InferGuard's own parse and normalise (the one
Prometheus parser); the brain package stays free of it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from inferguard.pipeline import Pipeline
from inferguard.sources.timeline import read_timeline
from rlm_agent import advise

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"


@cache
def load(scenario: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every successful scrape as ``{"ts", "values"}`` (canonical signals), and the phases file."""
    pipeline = Pipeline()
    rows = []
    for scrape in read_timeline(DATA / f"vllm_{scenario}.jsonl.gz"):
        obs = pipeline.observe(scrape)
        rows += [{"ts": s.ts, "values": dict(s.values)} for s in obs.signals]
    return rows, json.loads((DATA / f"vllm_{scenario}.phases.json").read_text("utf-8"))


def phase(phases: dict[str, Any], name: str) -> tuple[float, float]:
    """``a+b`` spans phase a's start to phase b's end."""
    by_name = {p["name"]: p for p in phases["phases"]}
    first, _, last = name.partition("+")
    return by_name[first]["start"], by_name[last or first]["end"]


def window(rows: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    return [r for r in rows if start <= r["ts"] < end]

# scenario -> phase -> (expected root cause, required advisories, forbidden advisories)
EXPECT: dict[str, dict[str, tuple[str, set[str], set[str]]]] = {
    "kv_overload": {
        "healthy": ("insufficient_evidence", set(), {"throttle_concurrency", "raise_batch_capacity"}),
        "overload": ("kv_cache_exhaustion", {"throttle_concurrency"}, {"raise_batch_capacity"}),
        "recovery": ("insufficient_evidence", set(), {"throttle_concurrency", "scale_out"}),
    },
    "admission_overload": {
        "healthy": ("insufficient_evidence", set(), {"throttle_concurrency", "raise_batch_capacity"}),
        "overload": ("admission_overload", {"raise_batch_capacity"}, {"throttle_concurrency", "scale_out"}),
        "recovery": ("insufficient_evidence", set(), {"raise_batch_capacity", "throttle_concurrency"}),
    },
    "prefix_churn": {
        "shared_prefix": ("insufficient_evidence", set(), {"recommend_compaction", "flush_session_radix"}),
        # Shared prefixes (hit ratio 0.93), then random prompts of the same length (hit ratio 0).
        "shared_prefix+random": ("prefix_cache_thrash", set(),
                                 {"recommend_compaction", "flush_session_radix", "throttle_concurrency"}),
    },
}


def payload(w: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    target = "http://127.0.0.1:8000/metrics"
    return {"schema_version": "1.0", "kind": "incident", "target": target, "engine": "vllm-v1", "model": "tiny",
            "synthetic": False, "window": w, "similar": [],
            "incident": {"id": "inc-rec", "fingerprint": "0" * 16, "target": target, "engine": "vllm-v1",
                         "model": "tiny", "severity": "warning", "status": "open", "synthetic": False,
                         "anomalies": [], "opened_at": start, "updated_at": end, "resolved_at": None}}


@pytest.mark.parametrize("scenario, phase_name", [(s, p) for s, ps in EXPECT.items() for p in ps])
def test_recorded_phase(scenario: str, phase_name: str) -> None:
    rows, phases = load(scenario)
    start, end = phase(phases, phase_name)
    w = window(rows, start, end)
    assert len(w) >= 5, "too few successful scrapes in the phase to judge"
    root, required, forbidden = EXPECT[scenario][phase_name]
    answer = advise(payload(w, start, end))
    actions = {a["action"] for a in answer["advisories"]}
    assert answer["diagnosis"]["root_cause"] == root, answer["diagnosis"]
    assert required <= actions and not (forbidden & actions), actions


@pytest.mark.parametrize("scenario", ["kv_overload", "admission_overload", "prefix_churn"])
def test_proactive_raises_no_alarm_on_quiet_real_phases(scenario: str) -> None:
    from rlm_agent import investigate

    rows, phases = load(scenario)
    quiet = [p["name"] for p in phases["phases"] if p["name"] in ("idle", "healthy", "shared_prefix", "quiet")]
    assert quiet
    for name in quiet:
        start, end = phase(phases, name)
        answer = investigate({"schema_version": "1.0", "kind": "proactive", "target": "http://127.0.0.1:8000",
                              "engine": "vllm-v1", "model": "tiny", "synthetic": False,
                              "window": window(rows, start, end), "similar": []})
        assert answer["advisories"] == [], (name, answer["advisories"])
