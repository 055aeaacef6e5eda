"""Run the labelled cases through the rules, a recorded-answer LLM double, or a live endpoint."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..agent import aadvise, advise
from ..llm import LLMClient, LLMSettings
from ..testing import RecordedLLMServer, Reply

DOUBLE_VARIANTS = ("good", "wrong", "malformed", "slow")


def _case(folder: Traversable) -> dict[str, Any]:
    """One case folder: payload.json, expected.json (written by hand), NOTE.md (``source: ...`` and where
    the situation comes from), and optionally llm_recorded.json (the double's good and wrong answers)."""
    note = folder.joinpath("NOTE.md").read_text("utf-8")
    source = re.search(r"^source: *(\S+)", note, re.M)
    body = note.split("\n", 1)[1] if note.startswith("#") else note
    case: dict[str, Any] = {
        "name": folder.name, "source": source.group(1) if source else "unknown",
        "description": re.sub(r"^source: *\S+\n", "", body.strip(), count=1, flags=re.M).strip(),
        "payload": json.loads(folder.joinpath("payload.json").read_text("utf-8")),
        "expect": json.loads(folder.joinpath("expected.json").read_text("utf-8")),
    }
    recorded = folder.joinpath("llm_recorded.json")
    if recorded.is_file():
        case["llm_recorded"] = json.loads(recorded.read_text("utf-8"))
    return case


def load_cases(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every case folder under ``folder`` (default: the packaged cases), by name."""
    root: Traversable = folder if folder is not None else resources.files("rlm_agent").joinpath("evals", "cases")
    return [_case(d) for d in sorted(root.iterdir(), key=lambda d: d.name)
            if d.is_dir() and d.joinpath("payload.json").is_file()]


@dataclass(frozen=True, slots=True)
class Result:
    case: str
    mode: str
    expected: str
    got: str
    root_ok: bool
    required_ok: bool
    forbidden_ok: bool
    claim_ok: bool
    source: str
    fallback_reason: str | None

    @property
    def passed(self) -> bool:
        return self.root_ok and self.required_ok and self.forbidden_ok and self.claim_ok


def score(case: dict[str, Any], answer: dict[str, Any], mode: str) -> Result:
    expect = case["expect"]
    actions = {a["action"] for a in answer["advisories"]}
    d = answer["diagnosis"]
    return Result(case["name"], mode, expect["root_cause"], d["root_cause"],
                  d["root_cause"] == expect["root_cause"],
                  set(expect["required_advisories"]) <= actions,
                  not (set(expect["forbidden_advisories"]) & actions),
                  expect.get("claim_status") in (None, d["claim_status"]),
                  d["source"], d["fallback_reason"])


def run_rules(cases: Iterable[dict[str, Any]]) -> list[Result]:
    return [score(c, advise(c["payload"]), "rules") for c in cases]


def _replies(case: dict[str, Any], variant: str, slow_s: float) -> list[Reply]:
    recorded = case.get("llm_recorded", {})
    if variant == "malformed":
        return [Reply.malformed()]
    if variant == "slow":
        return [Reply.slow(recorded["good"], slow_s)]
    return [Reply.answer(recorded[variant])]


async def run_double(cases: list[dict[str, Any]], *, timeout_s: float = 10.0, slow_timeout_s: float = 0.5,
                     variants: Iterable[str] = DOUBLE_VARIANTS) -> list[Result]:
    """The LLM path through the real openai SDK against :class:`RecordedLLMServer` (a test double).

    ``timeout_s`` is generous so a loaded machine never turns a recorded answer into a timeout; the
    ``slow`` variant alone uses ``slow_timeout_s`` and a reply four times later than that."""
    results = []
    with RecordedLLMServer() as server:
        for variant in variants:
            # A fresh client per variant: the response cache would otherwise replay "good" for "wrong".
            limit = slow_timeout_s if variant == "slow" else timeout_s
            llm = LLMClient(LLMSettings(api_key="recorded-double", base_url=server.base_url,
                                        model="recorded", timeout_s=limit, max_retries=0))
            try:
                for case in cases:
                    if "llm_recorded" not in case:
                        continue
                    server.reset()
                    server.push(*_replies(case, variant, slow_timeout_s * 4))
                    answer = await aadvise(case["payload"], llm=llm)
                    results.append(score(case, answer, f"llm-double:{variant}"))
            finally:
                await llm.aclose()
    return results


async def run_live(cases: list[dict[str, Any]], settings: LLMSettings) -> tuple[list[Result], dict[str, Any]]:
    llm = LLMClient(settings)
    try:
        results = [score(c, await aadvise(c["payload"], llm=llm), "llm-live") for c in cases]
    finally:
        await llm.aclose()
    return results, llm.totals.as_dict()


def table(results: list[Result]) -> str:
    """An accuracy table, one row per mode, then every failed case."""
    modes: dict[str, list[Result]] = {}
    for r in results:
        modes.setdefault(r.mode, []).append(r)
    head = f"{'mode':<22}{'cases':>6}{'root cause':>12}{'required':>10}{'forbidden ok':>14}{'claim':>7}" \
           f"{'pass':>7}{'source=llm':>12}"
    lines = [head, "-" * len(head)]
    for mode, rs in modes.items():
        n = len(rs)

        def pct(k: int, n: int = n) -> str:
            return f"{100.0 * k / n:.0f}%"

        lines.append(f"{mode:<22}{n:>6}{pct(sum(r.root_ok for r in rs)):>12}"
                     f"{pct(sum(r.required_ok for r in rs)):>10}{pct(sum(r.forbidden_ok for r in rs)):>14}"
                     f"{pct(sum(r.claim_ok for r in rs)):>7}{pct(sum(r.passed for r in rs)):>7}"
                     f"{pct(sum(r.source == 'llm' for r in rs)):>12}")
    failed = [r for r in results if not r.passed]
    if failed:
        lines.append("")
        lines.append("failed:")
        lines.extend(f"  {r.mode} {r.case}: expected {r.expected}, got {r.got} "
                     f"(required {'ok' if r.required_ok else 'MISSING'}, forbidden "
                     f"{'ok' if r.forbidden_ok else 'PRESENT'}, claim {'ok' if r.claim_ok else 'WRONG'}; "
                     f"{r.fallback_reason or ''})" for r in failed)
    return "\n".join(lines)
