"""Seed golden cases for the detector and incident stages from the real recordings in tests/data.

    PYTHONPATH=. python -m tests.golden.seed_stage_cases NAME RECORDING FROM_TS TO_TS [--stage detectors|incidents]

Writes ``tests/golden/<stage>/<NAME>/case.json`` — the stage's input, taken from a replay of
``tests/data/<RECORDING>.jsonl.gz`` between the two timestamps (the signals each scrape produced, or the
findings each scrape produced) — and, only when the folder has none yet, ``expected.json``: what the
stage returns today. That output is then read and checked by hand against the thresholds and the
recording's phases, and the check is written into ``case.json``'s ``checked`` note; a case without
one fails. Re-running never overwrites an ``expected.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from inferguard.pipeline import Pipeline
from inferguard.sources.timeline import read_timeline

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[0] / "data"


def replay_steps(recording: str, start: float, end: float, stage: str) -> list[dict[str, Any]]:
    pipeline = Pipeline()
    steps: list[dict[str, Any]] = []
    for scrape in read_timeline(DATA / f"{recording}.jsonl.gz"):
        obs = pipeline.observe(scrape)
        if not start <= scrape.ts <= end:
            continue
        if stage == "detectors":
            if obs.error is not None:
                steps.append({"ts": scrape.ts, "error": obs.error})
            for s in obs.signals:
                steps.append({"ts": s.ts, "model": s.model, "restarted": s.restarted, "values": dict(s.values)})
        else:
            steps.append({"ts": scrape.ts, "engine": obs.engine, "findings": [
                {"code": f.code, "model": f.model, "severity": f.severity, "summary": f.summary}
                for f in obs.findings]})
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("recording")
    ap.add_argument("start", type=float)
    ap.add_argument("end", type=float)
    ap.add_argument("--stage", choices=("detectors", "incidents"), default="detectors")
    args = ap.parse_args()
    folder = HERE / args.stage / args.name
    folder.mkdir(parents=True, exist_ok=True)
    case = {"source": f"tests/data/{args.recording}.jsonl.gz, scrapes from {args.start} to {args.end}",
            "checked": "", "steps": replay_steps(args.recording, args.start, args.end, args.stage)}
    (folder / "case.json").write_text(json.dumps(case, indent=1) + "\n", encoding="utf-8")
    if not (folder / "expected.json").exists():
        from tests.golden.test_detectors_golden import run as run_detectors
        from tests.golden.test_incidents_golden import run as run_incidents

        got = run_detectors(case) if args.stage == "detectors" else run_incidents(case)
        (folder / "expected.json").write_text(json.dumps(got, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {folder}: {len(case['steps'])} steps; now check expected.json by hand and fill 'checked'")


if __name__ == "__main__":
    main()
