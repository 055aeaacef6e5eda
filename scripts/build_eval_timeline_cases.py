"""Rebuild the brain eval cases that come from real recordings: ``payload.json`` of each
``rlm_agent/evals/cases/timeline_*`` folder, from the timelines committed in ``tests/data``.

    PYTHONPATH=. python scripts/build_eval_timeline_cases.py

Each recording is replayed through the very flow ``inferguard replay`` runs; the payloads the brain
stage builds are captured as they go to the rules, and the one named in CASES below is written. So a
case's payload is exactly what the daemon would have sent at that moment (detector anomalies, the
12-sample window, similar incidents), not a re-derivation. ``expected.json`` and ``NOTE.md`` in each
folder are written by hand and never touched here: the expected answer comes from what the recorder
did to the engine (the ``.phases.json``), not from what the rules say.

It lives outside ``rlm_agent`` because it uses ``inferguard`` (``rlm_agent`` never imports it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from inferguard.brain import Answer, Brain, IncidentPayload
from inferguard.config import Settings
from inferguard.runtime.build import build_flow
from inferguard.sources.timeline import read_timeline

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
CASES_DIR = ROOT / "rlm_agent" / "evals" / "cases"

Pick = Callable[[list[IncidentPayload]], IncidentPayload]


def first(payloads: list[IncidentPayload]) -> IncidentPayload:
    return payloads[0]


def first_with(code: str) -> Pick:
    def pick(payloads: list[IncidentPayload]) -> IncidentPayload:
        return next(p for p in payloads if any(a["code"] == code and a["active"]
                                               for a in p["incident"]["anomalies"]))
    return pick


# case folder -> (recording, which of the payloads the brain stage built)
CASES: dict[str, tuple[str, Pick]] = {
    "timeline_kv_overload_at_open": ("vllm_kv_overload", first),
    "timeline_admission_overload_at_open": ("vllm_admission_overload", first),
    "timeline_engine_restart_at_open": ("vllm_engine_restart", first),
    "timeline_engine_restart_after_restart": ("vllm_engine_restart", first_with("engine_restart")),
    "timeline_prefix_churn_at_open": ("vllm_prefix_churn", first),
}


class Capture:
    """Wraps the brain the flow was built with and keeps every payload handed to the rules."""

    def __init__(self, inner: Brain) -> None:
        self.inner = inner
        self.payloads: list[IncidentPayload] = []

    @property
    def refines(self) -> bool:
        return False

    def rules(self, payload: IncidentPayload) -> Answer | None:
        self.payloads.append(json.loads(json.dumps(payload)))  # a snapshot, as it went on the wire
        return self.inner.rules(payload)

    async def advise(self, payload: IncidentPayload, rules: Answer | None = None) -> Answer:
        return await self.inner.advise(payload, rules)

    async def investigate(self, payload: Any) -> Answer:
        return await self.inner.investigate(payload)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def payloads_of(recording: str) -> list[IncidentPayload]:
    flow = build_flow(Settings.load(env_file=None))
    assert flow.stage is not None
    capture = Capture(flow.stage.brain)
    flow.stage.brain = capture
    for scrape in read_timeline(DATA / f"{recording}.jsonl.gz"):
        await flow.process(scrape)
    return capture.payloads


def main() -> None:
    cache: dict[str, list[IncidentPayload]] = {}
    for name, (recording, pick) in CASES.items():
        if recording not in cache:
            cache[recording] = anyio.run(payloads_of, recording)
        payload = pick(cache[recording])
        folder = CASES_DIR / name
        folder.mkdir(exist_ok=True)
        (folder / "payload.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        missing = [f for f in ("expected.json", "NOTE.md") if not (folder / f).exists()]
        codes = sorted({a["code"] for a in payload["incident"]["anomalies"]})
        print(f"{name}: {recording} at ts {payload['incident']['updated_at']:.1f}, anomalies {codes}, "
              f"{len(payload['window'])} samples" + (f"; WRITE BY HAND: {', '.join(missing)}" if missing else ""))


if __name__ == "__main__":
    main()
