"""What each anomaly code means, for people and assistants (``inferguard serve``'s ``explain`` tool).
The thresholds named are the defaults; docs/detectors.md has the full rules."""

from __future__ import annotations

from typing import Any

from inferguard.models import ANOMALY_CODES

EXPLANATIONS: dict[str, dict[str, str]] = {
    "kv_pressure": {
        "meaning": "The engine's KV cache is (nearly) full, so new requests wait and running ones get preempted.",
        "fires_when": "KV usage >= KV_ALERT_THRESHOLD (0.85), or its recent peak while the engine preempts or "
                      "queues, or a slope that reaches full within 120 s",
        "look_at": "kv_usage, preemptions_per_s, requests_waiting; long prompts/outputs, max-num-seqs, "
                   "gpu-memory-utilization",
    },
    "queue_buildup": {
        "meaning": "Requests wait to be scheduled: arrivals exceed what the batch admits.",
        "fires_when": "requests_waiting >= 8 (critical at 50)",
        "look_at": "requests_running vs max-num-seqs, KV usage (low KV + queue = admission limit), arrival rate",
    },
    "preemption_storm": {
        "meaning": "The scheduler keeps evicting running requests to make room; their work is recomputed.",
        "fires_when": "preemptions >= 0.5/s (critical at 5/s)",
        "look_at": "KV usage, concurrency, output lengths",
    },
    "swap_activity": {
        "meaning": "Requests are swapped to CPU memory (vLLM V0): slow, a sign of KV exhaustion.",
        "fires_when": "requests_swapped > 0",
        "look_at": "KV usage, swap space, concurrency",
    },
    "ttft_regression": {
        "meaning": "Time to first token is well above its own healthy baseline.",
        "fires_when": "TTFT p95 > max(baseline x TTFT_ALERT_MULTIPLIER, 0.2 s)",
        "look_at": "queue time, prompt lengths, prefill throughput, prefix-cache hit ratio",
    },
    "itl_regression": {
        "meaning": "Inter-token latency (decode speed) is well above its healthy baseline.",
        "fires_when": "ITL p95 > max(baseline x 2, 50 ms)",
        "look_at": "batch size, speculative decoding acceptance, GPU throttling",
    },
    "prefix_cache_regression": {
        "meaning": "The prefix-cache hit ratio collapsed: prompts stopped sharing prefixes or the cache churns.",
        "fires_when": "hit ratio < half its baseline (baseline >= 0.2)",
        "look_at": "prompt templates, routing/session affinity, cache size",
    },
    "error_rate": {
        "meaning": "A share of requests finishes with an error.",
        "fires_when": "errored / finished >= 5 % (critical at 25 %)",
        "look_at": "engine logs, request validation, out-of-memory errors",
    },
    "spec_decode_collapse": {
        "meaning": "Speculative decoding's acceptance ratio fell: drafts are mostly wasted work.",
        "fires_when": "acceptance < half its baseline",
        "look_at": "draft model, speculation window, traffic mix",
    },
    "endpoint_unreachable": {
        "meaning": "The metrics endpoint does not answer: the engine or its network path is down.",
        "fires_when": "two failed scrapes in a row (timeout, refused, HTTP error, ...)",
        "look_at": "the engine process, its host, the network and credentials",
    },
    "engine_restart": {
        "meaning": "The engine restarted: counters went backwards or their creation time changed.",
        "fires_when": "a counter reset or a new _created / process start time",
        "look_at": "engine logs for a crash or OOM; the orchestrator's restarts",
    },
    "metrics_missing": {
        "meaning": "An identified engine no longer reports a core signal (KV usage, running, waiting).",
        "fires_when": "a core signal is absent from the page",
        "look_at": "engine version and flags (metrics disabled?), exporter configuration",
    },
    "engine_unidentified": {
        "meaning": "The endpoint serves metrics, but no known engine's names (vLLM, SGLang, DCGM).",
        "fires_when": "no known engine metric family on the page",
        "look_at": "the URL (is it the engine's /metrics?), the engine version",
    },
    "metrics_dropped": {
        "meaning": "Part of the page was not used: duplicated series, non-cumulative histogram buckets, "
                   "over-long labels, or series or models past InferGuard's per-target limits.",
        "fires_when": "a page with any of those (a warning, at once); clears after three clean pages",
        "look_at": "the evidence counts each kind; the exporter or engine producing duplicates or "
                   "ever-new label values (docs/operations.md, limits)",
    },
    "gpu_fault": {
        "meaning": "The GPU reports a fault (XID error, double-bit ECC) or throttles (thermal, power).",
        "fires_when": "DCGM XID or ECC DBE errors (critical); throttling or >= 90 C (warning)",
        "look_at": "nvidia-smi, DCGM, the node; drain the replica if XID/ECC",
    },
}


def explain(code: str) -> dict[str, Any]:
    """The explanation of one code; an unknown code is a ValueError listing the known ones."""
    if code not in EXPLANATIONS:
        raise ValueError(f"unknown anomaly code {code!r}; known: {', '.join(ANOMALY_CODES)}")
    return {"code": code, **EXPLANATIONS[code]}
