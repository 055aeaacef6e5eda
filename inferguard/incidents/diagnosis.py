"""Which diagnosis an incident keeps: the best-supported one over its life, not the latest.

As an incident winds down its evidence fades: an admission overload whose queue has drained still shows
a high TTFT for a few scrapes, and a re-diagnosis from that tail names ``prefill_bottleneck``. The tail
must not rewrite the story. So a different root cause replaces the one the incident holds only on new
evidence: an anomaly the incident did not have when its diagnosis was adopted (an unreachable engine that
comes back with its counters reset has restarted), or a strictly higher confidence. Evidence fading away
(anomalies clearing) is neither. Every answer is still kept in the incident's ``diagnoses`` history,
adopted or not, for the post-mortem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NO_CAUSE = "insufficient_evidence"


def _confidence(d: Mapping[str, Any] | None) -> float:
    value = (d or {}).get("confidence")
    return float(value) if isinstance(value, int | float) else 0.0


def adopt(current: Mapping[str, Any] | None, new: Mapping[str, Any], *, resolved: bool,
          new_evidence: bool = False) -> bool:
    """True when ``new`` should become the incident's diagnosis in place of ``current``.

    ``new_evidence``: the incident gained an anomaly code since ``current`` was adopted.
    """
    if current is None:
        return True
    new_cause, cur_cause = new.get("root_cause"), current.get("root_cause")
    if new_cause == NO_CAUSE:
        # "Not enough evidence" never overwrites a named cause; it only refreshes itself.
        return cur_cause == NO_CAUSE and not resolved
    if new_cause == cur_cause:
        # The same cause, re-measured: keep the reading at its best support (the incident's peak). An LLM
        # explaining the cause the rules named (checked against the evidence) is a refinement, not a rival,
        # and may land even after the resolve (it was asked while the incident was open).
        refined = new.get("source") == "llm" and current.get("source") != "llm"
        return refined or (not resolved and _confidence(new) >= _confidence(current))
    if cur_cause == NO_CAUSE:
        return True
    if resolved:
        return False  # after the fact there is no new evidence, only the tail
    return new_evidence or _confidence(new) > _confidence(current)
