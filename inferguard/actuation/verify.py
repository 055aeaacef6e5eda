"""Did the action work? Compare the signals that triggered it, before and after.

Each numeric trigger signal is judged improved / unchanged / worse (a change within 5 % of its own size
is "unchanged"); the outcome is whichever of improved or worse is more common, else unchanged. A signal
missing afterwards is unknown, never 0; with none left the outcome is "unknown".

When a canary probe ran beside the signals (:func:`with_probe`), users have the last word: a probe that
ran and failed makes the verdict "worse" (the engine is not serving a real request after the action,
whatever its metrics say); a probe that did not run cannot confirm anything, so "improved" becomes
"unknown"; a probe that succeeded leaves the signals' verdict as it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Signals where more is better; every other trigger signal (usage, queues, rates of trouble, latency) is
# better lower.
HIGHER_IS_BETTER = frozenset({"prefix_cache_hit_ratio", "cache_hit_rate", "generation_tokens_per_s",
                              "prompt_tokens_per_s", "requests_finished_per_s", "spec_acceptance_rate"})
TOLERANCE = 0.05


def trigger_signals(advisory: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for e in advisory.get("evidence") or []:
        v = e.get("value")
        if isinstance(v, int | float) and not isinstance(v, bool) and e.get("signal"):
            out.setdefault(str(e["signal"]), float(v))
    return out


def judge(signal: str, before: float, after: float | None) -> str:
    if after is None:
        return "unknown"
    delta = after - before
    if abs(delta) <= TOLERANCE * max(abs(before), 1e-9):
        return "unchanged"
    better = delta > 0 if signal in HIGHER_IS_BETTER else delta < 0
    return "improved" if better else "worse"


def _known(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def compare(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, Any]:
    per = {s: {"before": b, "after": _known(after.get(s)), "verdict": judge(s, b, _known(after.get(s)))}
           for s, b in before.items()}
    verdicts = [p["verdict"] for p in per.values() if p["verdict"] != "unknown"]
    if not verdicts:
        outcome = "unknown"
    else:
        up, down = verdicts.count("improved"), verdicts.count("worse")
        outcome = "improved" if up > down else "worse" if down > up else "unchanged"
    return {"outcome": outcome, "signals": per}


# What a verification keeps of a probe's result (the full result is the probe's own business).
PROBE_KEEP = ("ok", "ran", "status", "ttft_s", "tpot_s", "error")


def with_probe(outcome: str, probe: Mapping[str, Any] | None) -> str:
    """The signals' verdict combined with a probe's result (None: no probe configured)."""
    if probe is None:
        return outcome
    if probe.get("ran") and not probe.get("ok"):
        return "worse"
    if not probe.get("ran") and outcome == "improved":
        return "unknown"
    return outcome
