"""Check an LLM's claim against the evidence before it may replace the rules' answer.

Three questions, asked in this order (docs/brain.md, "Checked against the evidence"):

1. :func:`contradiction` — does the telemetry rule the claimed cause out?
2. :func:`supported_evidence` — which of the cited values actually occur in the telemetry?
3. :func:`discriminating` — does any of those values tell the claim apart from the rules' answer?
   A value that both causes produce (a queue under KV exhaustion, requests running under anything)
   supports neither over the other, so it cannot move the diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .diagnose import (
    ERROR_RATIO,
    KV_FULL,
    LATENCY_JUMP,
    PREEMPT_ANY,
    QUEUE_TIME_SLOW,
    WAITING_DEEP,
    preempting,
    queue_evidence,
    regressed,
)
from .features import Features
from .untrusted import text


def contradiction(f: Features, root_cause: str) -> str | None:
    """Why the evidence contradicts ``root_cause``, or None when it does not."""
    kv, pre = f.incident_peak("kv_usage"), f.mean("preemptions_per_s")
    waiting = f.incident_peak("requests_waiting")
    if root_cause == "kv_cache_exhaustion":
        if not preempting(f) and kv is not None and kv < KV_FULL and "kv_pressure" not in f.seen:
            return f"kv_usage peaks at {kv:.4f} and nothing is preempted"
    elif root_cause == "admission_overload":
        if waiting is not None and waiting < 1 and not queue_evidence(f) and "queue_buildup" not in f.seen:
            return "nothing is waiting"
        if preempting(f):
            what = f"{pre:.2f} preemptions/s" if pre is not None and pre >= PREEMPT_ANY else "evictions"
            return f"{what} with kv_usage up to {kv if kv is not None else float('nan'):.2f}: the KV cache is the wall"
        if kv is not None and kv >= KV_FULL:
            return f"kv_usage reaches {kv:.2f}: the KV cache is full"
    elif root_cause == "engine_down":
        if "endpoint_unreachable" not in f.active and f.stats:
            return "the endpoint answers and metrics arrive"
    elif root_cause == "engine_restarted":
        if "engine_restart" not in f.seen:
            return "no restart was detected (no counter went backwards)"
    elif root_cause == "gpu_fault":
        xid, dbe = f.peak("gpu_xid_error"), f.peak("gpu_ecc_dbe_per_s")
        if "gpu_fault" not in f.seen and not (xid and xid > 0) and not (dbe and dbe > 0):
            return "no GPU fault signal (XID, ECC) and no gpu_fault anomaly"
    elif root_cause == "error_burst":
        ratio = f.peak("error_ratio")
        if "error_rate" not in f.seen and (ratio is None or ratio < ERROR_RATIO / 5):
            return "error ratio is low or unknown and no error_rate anomaly"
    elif root_cause == "cpu_swap_thrash":
        swapped = f.peak("requests_swapped")
        if "swap_activity" not in f.seen and (swapped is None or swapped <= 0):
            return "no request was swapped to CPU"
    elif root_cause == "prefix_cache_thrash":
        hit = f.get("prefix_cache_hit_ratio")
        if "prefix_cache_regression" not in f.seen and (hit is None or hit.latest >= 0.8 * hit.baseline()):
            return "the prefix-cache hit ratio is unknown" if hit is None else "prefix-cache hit ratio did not fall"
    elif root_cause == "prefill_bottleneck":
        if "ttft_regression" not in f.seen and f.get("ttft_p95_s") is not None \
                and regressed(f, "ttft_p95_s", 1.2) is None:
            return "time to first token did not regress"
    elif root_cause == "decode_bottleneck" and not ({"itl_regression", "spec_decode_collapse"} & f.seen) \
            and f.get("itl_p95_s") is not None and regressed(f, "itl_p95_s", 1.2) is None:
        return "inter-token latency did not regress"
    return None


NOTE_MAX = 300


def _matches(observed: list[float], value: float) -> bool:
    return any(abs(value - o) <= 0.05 * max(abs(o), abs(value)) + 1e-6 for o in observed)


def supported_evidence(f: Features, evidence: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Keep the evidence items whose values occur in the window (within 5 %) or whose signal is an
    anomaly code of this incident; return them and how many were dropped."""
    kept: list[dict[str, Any]] = []
    for item in evidence:
        signal, value = str(item.get("signal", "")), item.get("value")
        s = f.get(signal)
        if s is not None and isinstance(value, int | float):
            derived = [s.max, s.min, s.mean, s.latest, s.baseline()]
            if _matches(s.values + derived, float(value)):
                kept.append({"signal": signal, "value": value, "note": text(item.get("note", ""), NOTE_MAX)})
        elif signal in f.seen:
            kept.append({"signal": signal, "value": None, "note": text(item.get("note", ""), NOTE_MAX)})
    return kept, len(evidence) - len(kept)


# -- what tells one cause from another ----------------------------------------------------------------
# A sign of a cause is a signal (or an anomaly code) together with the level at which it points at that
# cause, at the rules' own thresholds (diagnose.py): a claim needs the evidence the rules would need.
Sign = Callable[[Features, float | None], bool]


def _at_least(threshold: float) -> Sign:
    return lambda f, v: v is not None and v >= threshold


def _above_zero(f: Features, v: float | None) -> bool:
    return v is not None and v > 0


def _rose(signal: str, factor: float) -> Sign:
    def sign(f: Features, v: float | None) -> bool:
        s = f.get(signal)
        if v is None or s is None or s.n < 2:
            return False
        base = s.baseline()
        return v >= factor * base if base > 0 else v > 0
    return sign


def _fell(signal: str, floor: float) -> Sign:
    def sign(f: Features, v: float | None) -> bool:
        s = f.get(signal)
        return v is not None and s is not None and s.n >= 2 and s.baseline() >= floor and v <= 0.5 * s.baseline()
    return sign


def _seen(code: str) -> Sign:
    return lambda f, v: code in f.seen


def _active(code: str) -> Sign:
    return lambda f, v: code in f.active


SIGNS: dict[str, dict[str, Sign]] = {
    "engine_down": {"endpoint_unreachable": _active("endpoint_unreachable")},
    "gpu_fault": {"gpu_xid_error": _above_zero, "gpu_ecc_dbe_per_s": _above_zero, "gpu_fault": _seen("gpu_fault")},
    "engine_restarted": {"engine_restart": _seen("engine_restart")},
    "error_burst": {"error_ratio": _at_least(ERROR_RATIO), "error_rate": _seen("error_rate")},
    "cpu_swap_thrash": {"requests_swapped": _above_zero, "swap_activity": _seen("swap_activity")},
    # A full cache alone is a busy, healthy engine (vLLM fills it by design); running out shows as
    # evictions, which vLLM and SGLang do only when KV blocks run out.
    "kv_cache_exhaustion": {"preemptions_per_s": _at_least(PREEMPT_ANY), "retractions_per_s": _above_zero,
                            "preemption_storm": _seen("preemption_storm")},
    "admission_overload": {"requests_waiting": _at_least(WAITING_DEEP),
                           "queue_time_p95_s": _at_least(QUEUE_TIME_SLOW), "queue_buildup": _seen("queue_buildup")},
    "prefix_cache_thrash": {"prefix_cache_hit_ratio": _fell("prefix_cache_hit_ratio", 0.3),
                            "prefix_cache_regression": _seen("prefix_cache_regression")},
    "prefill_bottleneck": {"ttft_p95_s": _rose("ttft_p95_s", LATENCY_JUMP),
                           "ttft_p50_s": _rose("ttft_p50_s", LATENCY_JUMP),
                           "ttft_regression": _seen("ttft_regression")},
    "decode_bottleneck": {"itl_p95_s": _rose("itl_p95_s", 1.5), "itl_p50_s": _rose("itl_p50_s", 1.5),
                          "itl_regression": _seen("itl_regression"),
                          "spec_accept_ratio": _fell("spec_accept_ratio", 0.4),
                          "spec_decode_collapse": _seen("spec_decode_collapse")},
    "insufficient_evidence": {},
}

_LATENCY = ("ttft_p50_s", "ttft_p95_s", "ttft_p99_s", "itl_p50_s", "itl_p95_s", "itl_p99_s",
            "e2e_p50_s", "e2e_p95_s", "e2e_p99_s", "ttft_regression", "itl_regression")
_QUEUE = ("requests_waiting", "queue_time_p50_s", "queue_time_p95_s", "queue_time_p99_s", "queue_buildup")
_ERRORS = ("error_ratio", "requests_error_per_s", "requests_abort_per_s", "error_rate")
_GPU = ("gpu_xid_error", "gpu_ecc_dbe_per_s", "gpu_fault")

# Besides its own signs, what else a cause moves: a symptom it explains is no evidence against it.
# (Why each: KV exhaustion preempts, so work queues, latency rises and cached prefixes are evicted; vLLM
# v0 preempts by swapping. A dead engine leaves only stale numbers, except a GPU fault that may have
# killed it. A GPU fault fails requests and restarts engines. ...)
SYMPTOMS: dict[str, frozenset[str]] = {
    "kv_cache_exhaustion": frozenset((*_LATENCY, *_QUEUE, "prefix_cache_hit_ratio", "prefix_cache_regression",
                                      "requests_swapped", "swap_activity")),
    "admission_overload": frozenset((*_LATENCY, *_QUEUE)),
    "cpu_swap_thrash": frozenset((*_LATENCY, *_QUEUE, "kv_usage", "preemptions_per_s", "kv_pressure",
                                  "preemption_storm")),
    "prefix_cache_thrash": frozenset((*_LATENCY, "prompt_tokens_per_s")),
    "prefill_bottleneck": frozenset(("e2e_p50_s", "e2e_p95_s", "e2e_p99_s", "prompt_len_p50", "prompt_len_p99",
                                     "prompt_tokens_per_s")),
    "decode_bottleneck": frozenset(("e2e_p50_s", "e2e_p95_s", "e2e_p99_s")),
    "error_burst": frozenset(_ERRORS),
    "engine_restarted": frozenset((*_ERRORS, "endpoint_unreachable", "metrics_missing")),
    "gpu_fault": frozenset((*_ERRORS, *_LATENCY, "engine_restart", "endpoint_unreachable", "metrics_missing")),
    "insufficient_evidence": frozenset(),
}


def explained_by(cause: str, signal: str) -> bool:
    """``cause`` accounts for this signal's movement: it is one of its signs or symptoms."""
    if cause == "engine_down":
        return signal not in _GPU  # the engine is gone: everything but a GPU fault is stale or absent
    return signal in SIGNS.get(cause, {}) or signal in SYMPTOMS.get(cause, frozenset())


def discriminating(f: Features, claim: str, rules: str, evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of (already supported) ``evidence`` that are a sign of ``claim`` at the level the cited
    value shows and that ``rules`` does not explain. Empty: the evidence cannot tell the two apart."""
    signs = SIGNS.get(claim, {})
    out = []
    for item in evidence:
        signal, value = str(item["signal"]), item.get("value")
        sign = signs.get(signal)
        number = float(value) if isinstance(value, int | float) else None
        if sign is not None and sign(f, number) and not explained_by(rules, signal):
            out.append(item)
    return out
