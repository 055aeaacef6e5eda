"""Advisories: each action has one trigger that reads the evidence, never the root-cause label alone.

Every advisory is advice for a human (``advisory_only: true``), carries the evidence that triggered
it, and names engine-specific steps: vLLM and SGLang flags where the engine is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .diagnose import (
    ERROR_RATIO,
    KV_FULL,
    KV_HEADROOM,
    KV_HIGH,
    PREEMPT_ANY,
    PREEMPT_STORM,
    WAITING_DEEP,
    ev,
    queue_evidence,
    restart_count,
)
from .features import Features

COMPACTION_PAPER = "arXiv:2602.16284"


def family(engine: str) -> str:
    return "vllm" if engine.startswith("vllm") else "sglang" if engine == "sglang" else "other"


def advisory(action: str, *, confidence: float, horizon: str, rationale: str,
             evidence: list[dict[str, Any]], parameters: dict[str, Any] | None = None,
             steps: list[str] | None = None) -> dict[str, Any]:
    return {
        "action": action,
        "advisory_only": True,
        "confidence": round(min(max(confidence, 0.0), 1.0), 3),
        "horizon": horizon,
        "rationale": rationale,
        "parameters": parameters or {},
        "engine_steps": steps or [],
        "evidence": evidence,
    }


def kv_preempting(f: Features) -> tuple[bool, list[dict[str, Any]]]:
    """KV pressure with preemptions (or SGLang retractions), and the evidence for it. A preemption
    storm counts on its own: vLLM and SGLang evict running work only when KV blocks run out."""
    kv = f.incident_peak("kv_usage")
    pre, ret = f.mean("preemptions_per_s"), f.mean("retractions_per_s")
    evidence = []
    if pre is not None and pre >= PREEMPT_ANY:
        evidence.append(ev("preemptions_per_s", pre, "mean preemptions per second"))
    elif ret is not None and ret > 0:
        evidence.append(ev("retractions_per_s", ret, "mean retractions per second"))
    elif "preemption_storm" in f.seen:
        evidence.append(ev("preemption_storm", None, "the preemption-storm detector fired"))
    else:
        return False, []
    storm = (pre or 0.0) >= PREEMPT_STORM or (ret or 0.0) > 0 or "preemption_storm" in f.seen
    if kv is not None and kv >= KV_FULL:
        evidence.insert(0, ev("kv_usage", kv, "peak KV-cache usage"))
    elif not storm:
        return False, []
    return True, evidence


def prefix_thrashing(f: Features) -> tuple[bool, list[dict[str, Any]]]:
    hit = f.get("prefix_cache_hit_ratio")
    if hit is not None and hit.n >= 2 and hit.baseline() >= 0.3 and hit.latest <= 0.5 * hit.baseline():
        queries = f.mean("prefix_cache_queries_per_s")
        if queries is not None and queries <= 0:
            return False, []
        return True, [ev("prefix_cache_hit_ratio", hit.latest, f"fell from {hit.baseline():.2f}")]
    if "prefix_cache_regression" in f.seen:
        return True, [ev("prefix_cache_regression", None, "the prefix-cache regression detector fired")]
    return False, []


def throttle_concurrency(f: Features) -> dict[str, Any] | None:
    ok, evidence = kv_preempting(f)
    if not ok:
        return None
    limit = f.value_at_first_crossing("kv_usage", "requests_running", KV_HIGH)
    params: dict[str, Any] = {}
    if limit is not None and limit >= 1:
        params["max_concurrency"] = int(limit)
        evidence.append(ev("requests_running", limit, f"requests running when KV usage first reached {KV_HIGH}"))
    n = params.get("max_concurrency")
    steps = {
        "vllm": [f"restart with --max-num-seqs {n}" if n else "lower --max-num-seqs below the running count "
                 "at which KV usage reaches 0.85",
                 "or raise --gpu-memory-utilization (e.g. 0.92) if the GPU has memory to spare"],
        "sglang": [f"restart with --max-running-requests {n}" if n else "lower --max-running-requests",
                   "raise --schedule-conservativeness (e.g. 1.3) so the scheduler admits less optimistically"],
        "other": [f"cap client concurrency at {n}" if n else "cap client concurrency at the gateway"],
    }[family(f.engine)]
    pre = f.mean("preemptions_per_s") or 0.0
    return advisory("throttle_concurrency", confidence=0.85 if pre >= PREEMPT_STORM else 0.7, horizon="now",
                    rationale="The KV cache fills and the scheduler preempts running requests, recomputing "
                    "their work. Admitting fewer requests at once stops the churn.",
                    evidence=evidence, parameters=params, steps=steps)


def recommend_compaction(f: Features) -> dict[str, Any] | None:
    kv = f.peak("kv_usage")
    thrash, evidence = prefix_thrashing(f)
    if kv is None or kv < KV_HIGH or not thrash:
        return None
    evidence.append(ev("kv_usage", kv, "peak KV-cache usage"))
    steps = {
        "vllm": ["keep --enable-prefix-caching on; raise --gpu-memory-utilization to enlarge the KV pool",
                 f"compact long shared contexts (Attention Matching KV compaction, {COMPACTION_PAPER})"],
        "sglang": ["raise --mem-fraction-static to enlarge the KV pool",
                   f"compact long shared contexts (Attention Matching KV compaction, {COMPACTION_PAPER})"],
        "other": [f"compact long shared contexts (Attention Matching KV compaction, {COMPACTION_PAPER})"],
    }[family(f.engine)]
    return advisory("recommend_compaction", confidence=0.6, horizon="minutes",
                    rationale="Under KV pressure, reusable prefixes are evicted before reuse. Compacting the "
                    "KV cache keeps more shared context resident in the same memory.",
                    evidence=evidence, parameters={"kv_usage_peak": round(kv, 4)}, steps=steps)


def flush_session_radix(f: Features) -> dict[str, Any] | None:
    thrash, evidence = prefix_thrashing(f)
    if family(f.engine) != "sglang" or not thrash:
        return None
    return advisory("flush_session_radix", confidence=0.55, horizon="minutes",
                    rationale="SGLang's radix cache holds stale session prefixes that no longer match the "
                    "traffic, so new prefixes keep evicting each other. A flush resets the tree.",
                    evidence=evidence,
                    steps=["drain traffic, then POST /flush_cache on the SGLang server",
                           "if it recurs, lower --schedule-conservativeness less aggressively and check "
                           "the session routing keeps sessions on one replica"])


def drain_and_recycle(f: Features) -> dict[str, Any] | None:
    evidence: list[dict[str, Any]] = []
    horizon, why = "minutes", []
    xid, dbe = f.peak("gpu_xid_error"), f.peak("gpu_ecc_dbe_per_s")
    if (xid is not None and xid > 0) or (dbe is not None and dbe > 0) or "gpu_fault" in f.seen:
        horizon = "now"
        why.append("the GPU reports a hardware fault")
        evidence.append(ev("gpu_xid_error" if xid else "gpu_ecc_dbe_per_s" if dbe else "gpu_fault",
                           xid or dbe, "GPU fault"))
    swapped = f.peak("requests_swapped")
    if (swapped is not None and swapped > 0) or "swap_activity" in f.seen:
        why.append("requests swap between GPU and CPU memory")
        evidence.append(ev("requests_swapped", swapped, "requests swapped to CPU"))
    restarts = restart_count(f)
    if restarts >= 2:
        why.append(f"the engine restarted {restarts} times")
        evidence.append(ev("restarts", restarts, "restarts, this incident and remembered ones"))
    if not evidence:
        return None
    steps = ["take the replica out of the load balancer and wait for requests_running to reach 0",
             "restart the engine process (or reschedule the pod on another node)"]
    if horizon == "now":
        steps.append("cordon the node and read `nvidia-smi -q` and the kernel log for the XID before reuse")
    if family(f.engine) == "vllm" and swapped:
        steps.append("on vLLM V0, lower --swap-space or --max-num-seqs so requests stop swapping")
    return advisory("drain_and_recycle", confidence=0.8 if horizon == "now" else 0.65, horizon=horizon,
                    rationale="Recycle the replica: " + "; ".join(why) + ".", evidence=evidence,
                    parameters={"restarts": restarts} if restarts >= 2 else {}, steps=steps)


def quarantine_shape(f: Features) -> dict[str, Any] | None:
    ratio = f.peak("error_ratio")
    failing = (ratio is not None and ratio >= ERROR_RATIO) or bool(
        {"error_rate", "engine_restart", "endpoint_unreachable"} & f.seen)
    p99 = f.get("prompt_len_p99")
    if not failing or p99 is None or p99.n < 2:
        return None
    base = p99.baseline()
    if base <= 0 or p99.max < 2.0 * base:
        return None
    limit = math.ceil(max(base * 1.5, 1.0))
    evidence = [ev("prompt_len_p99", p99.max, f"prompt length p99 jumped from {base:.0f} tokens")]
    if ratio is not None:
        evidence.append(ev("error_ratio", ratio, "peak error ratio"))
    evidence.extend(ev(code, None, f"{code} detected") for code in
                    sorted({"error_rate", "engine_restart", "endpoint_unreachable"} & f.seen))
    steps = {
        "vllm": [f"reject or reroute prompts over {limit} tokens at the gateway",
                 "reproduce with one such request against a canary before lifting the block "
                 "(--max-model-len bounds what the engine accepts)"],
        "sglang": [f"reject or reroute prompts over {limit} tokens at the gateway",
                   "reproduce with one such request against a canary (--context-length bounds it)"],
        "other": [f"reject or reroute prompts over {limit} tokens at the gateway"],
    }[family(f.engine)]
    return advisory("quarantine_shape", confidence=0.6, horizon="now",
                    rationale="Failures started together with a new, much longer prompt shape. Keep that "
                    "shape away from the fleet until it is understood.",
                    evidence=evidence, parameters={"max_prompt_tokens": limit,
                                                   "observed_prompt_len_p99": round(p99.max, 1)},
                    steps=steps)


def shrink_speculation_window(f: Features) -> dict[str, Any] | None:
    spec = f.get("spec_accept_ratio")
    collapsed = "spec_decode_collapse" in f.seen
    if spec is not None and spec.n >= 2 and spec.baseline() >= 0.4 and spec.latest <= 0.5 * spec.baseline():
        collapsed = True
    if not collapsed:
        return None
    evidence = []
    params: dict[str, Any] = {}
    if spec is not None:
        a = min(max(spec.latest, 0.0), 0.99)
        # Expected accepted tokens per draft grows like a/(1-a): beyond that, drafts are wasted work.
        k = max(1, min(4, round(a / (1 - a))))
        params = {"num_speculative_tokens": k, "acceptance_ratio": round(spec.latest, 4)}
        evidence.append(ev("spec_accept_ratio", spec.latest, f"fell from {spec.baseline():.2f}"))
    else:
        evidence.append(ev("spec_decode_collapse", None, "the speculative-decoding detector fired"))
    k = params.get("num_speculative_tokens", 1)
    steps = {
        "vllm": [f"restart with --speculative-config '{{\"num_speculative_tokens\": {k}}}' "
                 "(keep the same draft method and model)", "or disable speculation until acceptance recovers"],
        "sglang": [f"restart with --speculative-num-steps {k} --speculative-num-draft-tokens {k + 1}"],
        "other": [f"lower the number of speculative tokens per step to {k}"],
    }[family(f.engine)]
    return advisory("shrink_speculation_window", confidence=0.7, horizon="minutes",
                    rationale="Draft tokens are mostly rejected; a shorter speculation window stops paying "
                    "for drafts that are thrown away.", evidence=evidence, parameters=params, steps=steps)


def raise_batch_capacity(f: Features) -> dict[str, Any] | None:
    kv = f.get("kv_usage")
    queued = queue_evidence(f)
    if kv is None or not queued:
        return None
    if (f.incident_peak("kv_usage") or 0.0) >= KV_HEADROOM or kv_preempting(f)[0] \
            or "preemption_storm" in f.seen:
        return None
    evidence = [*queued, ev("kv_usage", kv.max, "peak KV-cache usage: headroom left")]
    params: dict[str, Any] = {}
    running = f.peak("requests_running")
    waiting = f.incident_peak("requests_waiting") or 0.0
    if running is not None and running >= 1:
        evidence.append(ev("requests_running", running, "peak requests running"))
        params["current_running_peak"] = int(running)
        if waiting >= 1:
            # Room the KV cache allows at the same per-request footprint, capped by what is queued.
            # Without a queue depth (only queue time shows the wait) there is no number to give.
            kv_cap = running * KV_HIGH / max(kv.max, 1e-6)
            params["max_running"] = int(max(running + 1, min(running + waiting, kv_cap)))
    n = params.get("max_running")
    steps = {
        "vllm": [f"restart with --max-num-seqs {n}" if n else "raise --max-num-seqs above the running peak",
                 "raise --max-num-batched-tokens if prefill is chunked and TTFT stays high"],
        "sglang": [f"restart with --max-running-requests {n}" if n else
                   "raise --max-running-requests above the running peak",
                   "raise --chunked-prefill-size if TTFT stays high"],
        "other": ["raise the engine's batch / running-request limit"],
    }[family(f.engine)]
    return advisory("raise_batch_capacity", confidence=0.75, horizon="minutes",
                    rationale="Requests wait while the KV cache has headroom and nothing is preempted: the "
                    "batch limit is the wall, not memory. If latency per token rises with a larger batch, "
                    "compute is the wall and scale_out is the answer.", evidence=evidence,
                    parameters=params, steps=steps)


def scale_out(f: Features) -> dict[str, Any] | None:
    ok, evidence = kv_preempting(f)
    waiting = f.incident_peak("requests_waiting")
    if not ok or waiting is None or waiting < WAITING_DEEP:
        return None
    evidence.append(ev("requests_waiting", waiting, "peak requests waiting"))
    params: dict[str, Any] = {}
    # Facts for sizing, from the same scrapes: the most requests asked for at once (running + waiting)
    # and the most served at once. A replica count is not derived: under overload the running count
    # itself collapses (a real CPU vLLM served 23 at one scrape and 3 a minute later).
    pairs = f.paired("requests_running", "requests_waiting")
    if pairs:
        params["demand_peak"] = int(max(r + w for r, w in pairs))
        params["running_peak"] = int(max(r for r, _ in pairs))
    return advisory("scale_out", confidence=0.6, horizon="minutes",
                    rationale="Both the KV cache and the queue are saturated: no flag on this replica adds "
                    "capacity, more replicas do.", evidence=evidence, parameters=params,
                    steps=["add replicas behind the load balancer (or raise the autoscaler's maximum)"])


TRIGGERS: tuple[Callable[[Features], dict[str, Any] | None], ...] = (
    throttle_concurrency,
    raise_batch_capacity,
    scale_out,
    recommend_compaction,
    flush_session_radix,
    drain_and_recycle,
    quarantine_shape,
    shrink_speculation_window,
)


def advise_actions(f: Features) -> list[dict[str, Any]]:
    """Every advisory whose trigger holds, in TRIGGERS order."""
    return [a for trigger in TRIGGERS if (a := trigger(f)) is not None]
