"""Golden detector cases: one folder per case under tests/golden/detectors/, walked by one test.

``case.json``: ``source`` (where the steps come from; real recordings in tests/data), ``checked`` (what
was verified by hand), optional ``config`` (threshold overrides), and ``steps``: each either a sample
``{"ts", "model", "values": {signal: float}, "restarted"}`` or a failed scrape ``{"ts", "error"}``.
``expected.json``: ``{"steps": [[[code, severity], ...] per step]}`` — the findings active after each
step (model level for a sample, target level for every step), sorted. A new case needs no code;
``tests/golden/seed_stage_cases.py`` seeds one from a recording.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inferguard.detectors import DetectorBank, DetectorConfig
from inferguard.models import Finding, Signals

HERE = Path(__file__).resolve().parent / "detectors"
CASES = sorted(p.name for p in HERE.iterdir() if (p / "case.json").is_file())
TARGET = "golden/target"


def run(case: dict[str, Any]) -> dict[str, Any]:
    bank = DetectorBank(DetectorConfig().with_overrides(case.get("config", {})))
    per_model: dict[str, list[Finding]] = {}  # as the pipeline does: a model's findings stand between samples
    out = []
    for step in case["steps"]:
        if "error" in step:
            target = bank.target_status(TARGET, step["ts"], error=step["error"], engine=None)
        else:
            s = Signals(target=TARGET, ts=step["ts"], engine="vllm-v1", model=step["model"],
                        values=step["values"], restarted=step.get("restarted", False))
            per_model[s.model] = bank.observe(s)
            target = bank.target_status(TARGET, step["ts"], error=None, engine="vllm-v1")
        found = target + [f for fs in per_model.values() for f in fs]
        out.append(sorted([f.code, f.severity] for f in found))
    return {"steps": out}


def test_there_are_cases() -> None:
    assert len(CASES) >= 4


@pytest.mark.parametrize("case", CASES)
def test_detectors_golden(case: str) -> None:
    spec = json.loads((HERE / case / "case.json").read_text("utf-8"))
    expected = json.loads((HERE / case / "expected.json").read_text("utf-8"))
    assert spec.get("checked"), "every case says what was checked by hand"
    got = run(spec)
    diff = [(i, spec["steps"][i]["ts"], g, e) for i, (g, e) in enumerate(zip(got["steps"], expected["steps"],
                                                                             strict=True)) if g != e]
    assert diff == [], f"(step, ts, got, expected): {diff[:5]}"
