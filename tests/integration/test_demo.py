"""The demo end to end: the real simulator over loopback HTTP and the real daemon, one incident."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from inferguard.demo import run_demo


async def test_demo_detects_diagnoses_and_resolves_one_synthetic_incident(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The operator's own memory, as watch would use it: the demo must leave nothing in it.
    monkeypatch.setenv("INFERGUARD_STATE_DIR", str(tmp_path))
    out = io.StringIO()
    incidents = await run_demo(healthy_s=8, fault_s=22, recovery_max_s=40, interval_s=1.0,
                               console=Console(file=out, width=80))  # piped: not a terminal
    assert len(incidents) == 1, [i["codes"] for i in incidents]
    inc = incidents[0]
    assert "kv_pressure" in inc["codes"] and inc["resolved_at"] is not None
    assert inc["synthetic"] is True
    assert inc["diagnosis"]["root_cause"] == "kv_cache_exhaustion"
    assert inc["diagnoses"][0]["root_cause"] == "kv_cache_exhaustion"  # right on the first message
    assert inc["diagnoses"][0]["ts"] == inc["opened_at"]
    assert inc["diagnosis"]["claim_status"] == "synthetic"
    assert {"throttle_concurrency"} <= {a["action"] for a in inc["advisories"]}
    text = out.getvalue()
    assert "incident opened" in text and "incident resolved" in text and "throttle_concurrency" in text
    # Piped output is never wrapped mid-phrase at 80 columns, and says each thing once.
    diagnosis = next(line for line in text.splitlines() if "diagnosis: kv_cache_exhaustion" in line)
    assert len(diagnosis) > 80 and " — " in diagnosis and diagnosis.rstrip().endswith("."), diagnosis  # one line
    assert text.count("all anomalies cleared") == 1
    repeated = [line for line in text.splitlines() if "->critical" in line and line.count("->critical") > 1]
    assert repeated == []
    assert list(tmp_path.iterdir()) == []  # a synthetic incident is never recalled as a past one
