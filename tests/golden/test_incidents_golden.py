"""Golden incident cases: one folder per case under tests/golden/incidents/, walked by one test.

``case.json``: ``source``, ``checked`` (what was verified by hand) and ``steps``: ``{"ts", "engine",
"findings": [{"code", "model", "severity", "summary"}]}`` — what the detectors reported at each scrape
(from a real recording, or written by hand and labelled synthetic). ``expected.json``: ``{"events":
[[step, kind, [changes...]], ...], "incidents": [{codes, severity, peak_severity, opened_at,
resolved_at, flaps}, ...]}``. A new case needs no code; ``tests/golden/seed_stage_cases.py
--stage incidents`` seeds one from a recording.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inferguard.incidents import IncidentBook
from inferguard.models import Finding

HERE = Path(__file__).resolve().parent / "incidents"
CASES = sorted(p.name for p in HERE.iterdir() if (p / "case.json").is_file())
TARGET = "golden/target"


def run(case: dict[str, Any]) -> dict[str, Any]:
    book = IncidentBook()
    events = []
    for i, step in enumerate(case["steps"]):
        findings = [Finding(code=f["code"], target=TARGET, model=f["model"], severity=f["severity"], ts=step["ts"],
                            summary=f.get("summary", "")) for f in step["findings"]]
        for ev in book.update(TARGET, step["ts"], findings, engine=step.get("engine", "vllm-v1"), model="m"):
            events.append([i, ev.kind, list(ev.changes)])
    incidents = [{"codes": sorted({a.code for a in inc.anomalies.values()}), "severity": inc.severity,
                  "peak_severity": inc.peak_severity, "opened_at": inc.opened_at, "resolved_at": inc.resolved_at,
                  "flaps": inc.flaps} for inc in book.history]
    return {"events": events, "incidents": incidents}


def test_there_are_cases() -> None:
    assert len(CASES) >= 3


@pytest.mark.parametrize("case", CASES)
def test_incidents_golden(case: str) -> None:
    spec = json.loads((HERE / case / "case.json").read_text("utf-8"))
    expected = json.loads((HERE / case / "expected.json").read_text("utf-8"))
    assert spec.get("checked"), "every case says what was checked by hand"
    assert run(spec) == expected
