"""Check an LLM's claim against the evidence: is the root cause contradicted, do the values exist?"""

from __future__ import annotations

from typing import Any

from .diagnose import ERROR_RATIO, KV_FULL, PREEMPT_ANY, preempting, queue_evidence, regressed
from .features import Features


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
            return "prefix-cache hit ratio did not fall"
    elif root_cause == "prefill_bottleneck":
        if "ttft_regression" not in f.seen and f.get("ttft_p95_s") is not None \
                and regressed(f, "ttft_p95_s", 1.2) is None:
            return "time to first token did not regress"
    elif root_cause == "decode_bottleneck" and not ({"itl_regression", "spec_decode_collapse"} & f.seen) \
            and f.get("itl_p95_s") is not None and regressed(f, "itl_p95_s", 1.2) is None:
        return "inter-token latency did not regress"
    return None


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
                kept.append({"signal": signal, "value": value, "note": str(item.get("note", ""))[:300]})
        elif signal in f.seen:
            kept.append({"signal": signal, "value": None, "note": str(item.get("note", ""))[:300]})
    return kept, len(evidence) - len(kept)
