"""Deterministic diagnosis: every rule scores its root cause from the evidence; the best one wins.

A rule that lacks the numbers it needs scores low instead of guessing, and when nothing scores
above ``MIN_SCORE`` the answer is ``insufficient_evidence``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .features import Features

# Thresholds, chosen from what a real vLLM did on this machine (docs/brain.md, "The rules").
KV_HIGH = 0.85  # where vLLM starts preempting under load
KV_FULL = 0.9
KV_HEADROOM = 0.5  # below this at its peak the KV cache is not the wall
WAITING_DEEP = 5.0
QUEUE_TIME_SLOW = 1.0  # seconds a request waits to be scheduled (p95): a queue even when the gauge reads 0
PREEMPT_STORM = 0.5  # preemptions per second
PREEMPT_ANY = 0.05
ERROR_RATIO = 0.05
LATENCY_JUMP = 2.0  # latest p95 over the window's baseline
MIN_SCORE = 0.45


def ev(signal: str, value: float | None, note: str) -> dict[str, Any]:
    return {"signal": signal, "value": None if value is None else round(float(value), 6), "note": note}


@dataclass(slots=True)
class Candidate:
    root_cause: str
    score: float
    summary: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True  # every signal the rule needs was known


def regressed(f: Features, signal: str, factor: float = LATENCY_JUMP) -> float | None:
    """Latest over baseline when the signal got ``factor`` times worse inside the window."""
    s = f.get(signal)
    if s is None or s.n < 2:
        return None
    base = s.baseline()
    if base <= 0:
        return s.latest if s.latest > 0 and s.max > 0.05 else None
    ratio = s.after_baseline_max() / base
    return ratio if ratio >= factor else None


def _anomaly_notes(f: Features, code: str) -> list[dict[str, Any]]:
    out = []
    for item in f.anomaly_evidence.get(code, [])[:4]:
        note = item.get("note") or f"{code} evidence"
        out.append(ev(item["signal"], item.get("value"), str(note)[:300]))
    return out


def rule_engine_down(f: Features) -> Candidate | None:
    if "endpoint_unreachable" not in f.active:
        return None
    return Candidate("engine_down", 0.95, "The engine's /metrics endpoint does not answer: the engine is down "
                     "or unreachable.", _anomaly_notes(f, "endpoint_unreachable")
                     or [ev("endpoint_unreachable", None, "scrapes failing")])


def rule_gpu_fault(f: Features) -> Candidate | None:
    evidence = []
    xid = f.peak("gpu_xid_error")
    if xid is not None and xid > 0:
        evidence.append(ev("gpu_xid_error", xid, "GPU reported an XID error"))
    dbe = f.peak("gpu_ecc_dbe_per_s")
    if dbe is not None and dbe > 0:
        evidence.append(ev("gpu_ecc_dbe_per_s", dbe, "double-bit ECC errors"))
    if "gpu_fault" in f.seen:
        evidence.extend(_anomaly_notes(f, "gpu_fault"))
    if not evidence:
        return None
    return Candidate("gpu_fault", 0.92, "The GPU under the engine reports a hardware fault (XID / ECC).",
                     evidence)


def rule_engine_restarted(f: Features) -> Candidate | None:
    if "engine_restart" not in f.seen:
        return None
    restarts = restart_count(f)
    summary = "The engine restarted (counters went backwards)"
    summary += f"; {restarts} restarts including remembered incidents." if restarts > 1 else "."
    return Candidate("engine_restarted", 0.85, summary,
                     [*_anomaly_notes(f, "engine_restart"), ev("restarts", restarts, "restarts seen")])


def restart_count(f: Features) -> int:
    own = 1 if "engine_restart" in f.seen else 0
    return own + sum(1 for s in f.similar if "engine_restart" in s.get("codes", [])
                     and (not s.get("target") or s.get("target") == f.target))


def rule_error_burst(f: Features) -> Candidate | None:
    ratio = f.peak("error_ratio")
    rate = f.peak("requests_error_per_s")
    if not ((ratio is not None and ratio >= ERROR_RATIO) or "error_rate" in f.seen):
        return None
    evidence = []
    if ratio is not None:
        evidence.append(ev("error_ratio", ratio, "peak share of requests finishing with an error"))
    if rate is not None:
        evidence.append(ev("requests_error_per_s", rate, "peak errored requests per second"))
    evidence.extend(_anomaly_notes(f, "error_rate"))
    score = 0.7 + min(0.2, (ratio or 0.0))
    return Candidate("error_burst", score, "Requests are failing in a burst.", evidence,
                     complete=ratio is not None)


def rule_cpu_swap(f: Features) -> Candidate | None:
    swapped = f.peak("requests_swapped")
    if not ((swapped is not None and swapped > 0) or "swap_activity" in f.seen):
        return None
    evidence = []
    if swapped is not None:
        evidence.append(ev("requests_swapped", swapped, "peak requests swapped to CPU"))
    evidence.extend(_anomaly_notes(f, "swap_activity"))
    kv = f.peak("kv_usage")
    score = 0.75 + (0.1 if kv is not None and kv >= KV_HIGH else 0.0)
    if kv is not None:
        evidence.append(ev("kv_usage", kv, "peak KV-cache usage"))
    return Candidate("cpu_swap_thrash", score, "KV blocks are being swapped to CPU memory and back: "
                     "the KV cache is oversubscribed and swap is eating throughput.", evidence,
                     complete=swapped is not None)


def preempting(f: Features) -> bool:
    """The scheduler evicts running work: preemptions (vLLM) or retractions (SGLang), measured in
    the window or reported by the detector. Both happen only when KV blocks run out."""
    pre, ret = f.mean("preemptions_per_s"), f.mean("retractions_per_s")
    return (pre is not None and pre >= PREEMPT_ANY) or (ret is not None and ret > 0) \
        or "preemption_storm" in f.seen


def rule_kv_exhaustion(f: Features) -> Candidate | None:
    kv = f.get("kv_usage")
    kv_peak = f.incident_peak("kv_usage")
    pre, ret = f.mean("preemptions_per_s"), f.mean("retractions_per_s")
    evicting = preempting(f)
    full = kv_peak is not None and kv_peak >= KV_FULL
    tte = imminent_exhaustion(f)
    if not full and not evicting and tte is None:
        return None
    evidence = []
    if kv is not None and kv.max >= (kv_peak or 0.0):
        evidence.append(ev("kv_usage", kv.max, f"peak KV-cache usage (min {kv.min:.2f}, mean {kv.mean:.2f})"))
    elif kv_peak is not None:
        evidence.append(ev("kv_usage", kv_peak, "KV-cache usage when the detector fired"))
    score = 0.35 if full else 0.3
    if tte is not None:
        # Near full and still climbing: the leading indicator names the cause before the wall is hit.
        evidence.append(ev("kv_time_to_full_s", tte, "seconds until the KV cache is full at the present slope"))
        score += 0.15 if full else 0.2
    if pre is not None and pre >= PREEMPT_ANY:
        evidence.append(ev("preemptions_per_s", pre, "mean preemptions per second over the window"))
        score += 0.35 if pre >= PREEMPT_STORM else 0.2
    if ret is not None and ret > 0:
        evidence.append(ev("retractions_per_s", ret, "mean SGLang retractions per second"))
        score += 0.3
    if "preemption_storm" in f.seen and (pre is None or pre < PREEMPT_ANY):
        score += 0.2
        evidence.extend(_anomaly_notes(f, "preemption_storm"))
    waiting = f.incident_peak("requests_waiting")
    if waiting is not None and waiting >= WAITING_DEEP:
        evidence.append(ev("requests_waiting", waiting, "peak requests waiting"))
        score += 0.15
    if evicting and kv is not None and kv.frac_at_least(KV_HIGH) >= 0.3:
        score += 0.1
    # Measured only when the window itself shows a full cache and the eviction rate.
    complete = kv is not None and kv.max >= KV_FULL and (pre is not None or ret is not None) and (
        (pre or 0.0) >= PREEMPT_ANY or (ret or 0.0) > 0)
    if full:
        summary = (f"The KV cache is exhausted: usage reaches {kv_peak:.2f} and the scheduler preempts "
                   "running requests to make room, so work is recomputed and the queue grows.")
    else:
        summary = ("The scheduler keeps preempting running requests, which it does only when KV blocks run "
                   "out; the sampled KV gauge never showed it full (it drains between bursts).")
    if not evicting:
        summary = (f"KV usage reaches {kv_peak:.2f}; nothing is preempted yet, but new requests wait for "
                   "free blocks.")
    if not evicting and tte is not None:
        summary = (f"KV usage reaches {kv_peak or 0.0:.2f} and is still climbing (full in about {tte:.0f} s): "
                   "KV-cache exhaustion is imminent; nothing is preempted yet.")
    return Candidate("kv_cache_exhaustion", min(score, 0.95), summary, evidence, complete=complete)


def imminent_exhaustion(f: Features) -> float | None:
    """Seconds until the KV cache is full when it is near full (>= KV_HIGH) and climbing, else None.

    From the detector's own projection when it gave one, else from the window's least-squares slope."""
    projected = f.evidence_values.get("kv_time_to_full_s")
    kv = f.get("kv_usage")
    if kv is None or kv.max < KV_HIGH:
        return None
    if projected:
        return min(projected)
    slope = kv.slope
    if slope is None or slope <= 0 or kv.latest < KV_HIGH or kv.latest >= 1.0:
        return None
    return (1.0 - kv.latest) / slope


def queue_evidence(f: Features) -> list[dict[str, Any]]:
    """Measured signs that requests wait to be scheduled. On a CPU-starved engine the waiting gauge
    mostly reads 0 at scrape time while the queue-time histogram shows seconds of waiting."""
    out = []
    queue = f.incident_peak("requests_waiting")
    if queue is not None and queue >= WAITING_DEEP:
        out.append(ev("requests_waiting", queue, "peak requests waiting"))
    qtime = f.incident_peak("queue_time_p95_s")
    if qtime is not None and qtime >= QUEUE_TIME_SLOW:
        out.append(ev("queue_time_p95_s", qtime, "p95 time a request waited to be scheduled"))
    return out


def rule_admission_overload(f: Features) -> Candidate | None:
    evidence = queue_evidence(f)
    if not evidence and "queue_buildup" not in f.seen:
        return None
    evidence = evidence or _anomaly_notes(f, "queue_buildup")
    kv = f.get("kv_usage")
    pre = f.mean("preemptions_per_s")
    if kv is None:
        return Candidate("admission_overload", 0.4, "Requests queue, but KV usage is unknown, so the wall "
                         "cannot be told apart from KV exhaustion.", evidence, complete=False)
    kv_peak = f.incident_peak("kv_usage") or kv.max
    if kv_peak >= KV_HEADROOM or preempting(f):
        return None
    evidence.append(ev("kv_usage", kv.max, "peak KV-cache usage: the cache has headroom"))
    score = 0.65
    if pre is not None:
        evidence.append(ev("preemptions_per_s", pre, "no preemptions: the KV cache is not the limit"))
    running = f.get("requests_running")
    if running is not None:
        evidence.append(ev("requests_running", running.max, "peak requests running (the batch)"))
    ttft = regressed(f, "ttft_p95_s") or regressed(f, "ttft_p50_s")
    if ttft is not None or "ttft_regression" in f.seen:
        signal = "ttft_p95_s" if f.get("ttft_p95_s") is not None else "ttft_p50_s"
        evidence.append(ev(signal, f.incident_peak(signal), "time to first token rose while requests waited"))
        score += 0.15
    if kv.max < 0.2:
        score += 0.1
    waiting, qtime = f.get("requests_waiting"), f.get("queue_time_p95_s")
    live_queue = (waiting is not None and waiting.max >= WAITING_DEEP) or (
        qtime is not None and qtime.max >= QUEUE_TIME_SLOW)
    queue, slow = f.incident_peak("requests_waiting"), f.incident_peak("queue_time_p95_s")
    seen = ", ".join(x for x in (f"{queue:.0f} waiting" if queue else "",
                                 f"p95 {slow:.1f} s in the queue" if slow and slow >= QUEUE_TIME_SLOW else "")
                     if x) or "queue detected"
    return Candidate("admission_overload", min(score, 0.92),
                     f"Requests queue ({seen}) while the KV cache has headroom (peak {kv.max:.4f}) and "
                     "nothing is preempted: the batch limit or compute is the wall.",
                     evidence, complete=pre is not None and live_queue)


def rule_prefix_thrash(f: Features) -> Candidate | None:
    hit = f.get("prefix_cache_hit_ratio")
    evidence: list[dict[str, Any]] = []
    dropped = False
    if hit is not None and hit.n >= 2:
        base = hit.baseline()
        if base >= 0.3 and hit.latest <= 0.5 * base:
            dropped = True
            evidence.append(ev("prefix_cache_hit_ratio", hit.latest,
                               f"hit ratio fell from {base:.2f} at the start of the window"))
    if "prefix_cache_regression" in f.seen:
        dropped = True
        evidence.extend(_anomaly_notes(f, "prefix_cache_regression"))
    if not dropped:
        return None
    queries = f.mean("prefix_cache_queries_per_s")
    if queries is not None:
        if queries <= 0:
            return None  # no traffic asking the cache: a ratio over nothing is not thrash
        evidence.append(ev("prefix_cache_queries_per_s", queries, "tokens per second still asking the cache"))
    kv = f.peak("kv_usage")
    score = 0.65 + (0.1 if kv is not None and kv >= KV_HIGH else 0.0)
    if kv is not None:
        evidence.append(ev("kv_usage", kv, "peak KV-cache usage"))
    return Candidate("prefix_cache_thrash", score, "Prefix-cache hits collapsed while requests still "
                     "query it: cached prefixes are evicted before they are reused, so prefill is redone.",
                     evidence, complete=queries is not None)


def rule_prefill(f: Features) -> Candidate | None:
    ttft = regressed(f, "ttft_p95_s") or regressed(f, "ttft_p50_s")
    if ttft is None and "ttft_regression" not in f.seen:
        return None
    waiting = f.peak("requests_waiting")
    kv = f.peak("kv_usage")
    if (waiting is not None and waiting >= WAITING_DEEP) or (kv is not None and kv >= KV_FULL) \
            or preempting(f) or "kv_pressure" in f.seen:
        return None  # a queue, a full cache or evictions explain the TTFT better; their rules decide
    itl = regressed(f, "itl_p95_s", 1.5)
    if itl is not None:
        return None
    signal = "ttft_p95_s" if f.get("ttft_p95_s") is not None else "ttft_p50_s"
    evidence = [ev(signal, f.peak(signal), "time to first token regressed")] if f.get(signal) else []
    evidence.extend(_anomaly_notes(f, "ttft_regression"))
    score = 0.5
    for shape in ("prompt_len_p99", "prompt_tokens_per_s"):
        s = f.get(shape)
        if s is not None and s.n >= 2 and s.baseline() > 0 and s.max >= 1.5 * s.baseline():
            evidence.append(ev(shape, s.max, f"rose from {s.baseline():.0f}: longer or more prompts"))
            score += 0.15
            break
    return Candidate("prefill_bottleneck", score, "Time to first token regressed while decode speed held "
                     "and nothing queued: prefill is the bottleneck.", evidence,
                     complete=f.get("itl_p95_s") is not None)


def rule_decode(f: Features) -> Candidate | None:
    itl = regressed(f, "itl_p95_s", 1.5) or regressed(f, "itl_p50_s", 1.5)
    spec = f.get("spec_accept_ratio")
    collapsed = "spec_decode_collapse" in f.seen or (
        spec is not None and spec.n >= 2 and spec.baseline() >= 0.4 and spec.latest <= 0.5 * spec.baseline())
    if itl is None and "itl_regression" not in f.seen and not collapsed:
        return None
    kv = f.incident_peak("kv_usage")
    kv_wall = (kv is not None and kv >= KV_FULL) or preempting(f) or (
        "kv_pressure" in f.active and kv is not None and kv >= KV_HIGH)
    if kv_wall and not collapsed:
        return None  # slow decode beside a full KV cache is the cache's symptom; its rule decides
    evidence = []
    signal = "itl_p95_s" if f.get("itl_p95_s") is not None else "itl_p50_s"
    if f.get(signal) is not None:
        evidence.append(ev(signal, f.peak(signal), "inter-token latency regressed"))
    evidence.extend(_anomaly_notes(f, "itl_regression"))
    score = 0.55
    summary = "Inter-token latency regressed: decode is the bottleneck."
    if collapsed:
        if spec is not None:
            evidence.append(ev("spec_accept_ratio", spec.latest,
                               f"speculative acceptance fell from {spec.baseline():.2f}"))
        evidence.extend(_anomaly_notes(f, "spec_decode_collapse"))
        score = 0.75
        summary = ("Speculative-decoding acceptance collapsed: draft tokens are rejected, so each decode "
                   "step does wasted work and decode slows.")
    return Candidate("decode_bottleneck", score, summary, evidence, complete=f.get(signal) is not None)


RULES: tuple[Callable[[Features], Candidate | None], ...] = (
    rule_engine_down,
    rule_gpu_fault,
    rule_engine_restarted,
    rule_error_burst,
    rule_cpu_swap,
    rule_kv_exhaustion,
    rule_admission_overload,
    rule_prefix_thrash,
    rule_prefill,
    rule_decode,
)


def candidates(f: Features) -> list[Candidate]:
    """Every rule that fired, best first (ties keep RULES order)."""
    found = [c for rule in RULES if (c := rule(f)) is not None]
    return sorted(found, key=lambda c: -c.score)


def claim_status(f: Features, c: Candidate) -> str:
    if f.synthetic:
        return "synthetic"
    live = f.kind == "proactive" or bool(f.active)
    return "measured" if c.complete and live else "inferred"


def insufficient(f: Features, best: Candidate | None) -> dict[str, Any]:
    missing = sorted({"metrics_missing", "engine_unidentified"} & f.seen)
    parts = []
    if not f.stats:
        parts.append("the window holds no signals")
    if missing:
        parts.append("detectors reported " + ", ".join(missing))
    if best is not None:
        parts.append(f"the strongest lead ({best.root_cause}, score {best.score:.2f}) is too weak to claim")
    if not parts:
        parts.append("no rule's evidence holds")
    evidence = best.evidence[:4] if best is not None else []
    return {
        "root_cause": "insufficient_evidence",
        "summary": "Not enough evidence for a root cause: " + "; ".join(parts) + ".",
        "evidence": evidence,
        "confidence": 0.5,
        "claim_status": "synthetic" if f.synthetic else "not_proven",
        "source": "rules",
        "fallback_reason": None,
    }


def diagnose(f: Features) -> dict[str, Any]:
    """The deterministic diagnosis dict (answer schema ``diagnosis``)."""
    ranked = candidates(f)
    best = ranked[0] if ranked else None
    if best is None or best.score < MIN_SCORE:
        return insufficient(f, best)
    confidence = best.score if best.complete else min(best.score, 0.6)
    return {
        "root_cause": best.root_cause,
        "summary": best.summary,
        "evidence": best.evidence[:16],
        "confidence": round(confidence, 3),
        "claim_status": claim_status(f, best),
        "source": "rules",
        "fallback_reason": None,
    }
