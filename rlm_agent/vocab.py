"""The shared vocabulary, copied (not imported) from inferguard.models so the two packages stay apart.

tests/brain/test_vocab.py checks these copies against inferguard's originals.
"""

from __future__ import annotations

SCHEMA_VERSION = "1.0"

ENGINES = ("vllm-v1", "vllm-v0", "sglang", "dcgm", "unknown")

ANOMALY_CODES = (
    "kv_pressure",
    "queue_buildup",
    "preemption_storm",
    "swap_activity",
    "ttft_regression",
    "itl_regression",
    "prefix_cache_regression",
    "error_rate",
    "spec_decode_collapse",
    "endpoint_unreachable",
    "engine_restart",
    "metrics_missing",
    "engine_unidentified",
    "gpu_fault",
    "metrics_dropped",
)

# The canonical signal names the brain reads (a subset of inferguard.models.SIGNALS).
SIGNALS = (
    "kv_usage",
    "requests_running",
    "requests_waiting",
    "requests_swapped",
    "preemptions_per_s",
    "retractions_per_s",
    "prompt_tokens_per_s",
    "generation_tokens_per_s",
    "prefix_cache_hit_ratio",
    "prefix_cache_queries_per_s",
    "ttft_p50_s",
    "ttft_p95_s",
    "ttft_p99_s",
    "itl_p50_s",
    "itl_p95_s",
    "itl_p99_s",
    "e2e_p50_s",
    "e2e_p95_s",
    "e2e_p99_s",
    "queue_time_p50_s",
    "queue_time_p95_s",
    "queue_time_p99_s",
    "prompt_len_p50",
    "prompt_len_p99",
    "requests_finished_per_s",
    "requests_error_per_s",
    "requests_abort_per_s",
    "error_ratio",
    "spec_accept_ratio",
    "gpu_xid_error",
    "gpu_ecc_dbe_per_s",
    "gpu_temp_c",
    "gpu_power_w",
    "gpu_throttle_reasons",
    "gpu_fb_used_ratio",
    "gpu_util",
)

ROOT_CAUSES = (
    "kv_cache_exhaustion",
    "admission_overload",
    "prefill_bottleneck",
    "decode_bottleneck",
    "prefix_cache_thrash",
    "cpu_swap_thrash",
    "error_burst",
    "engine_down",
    "engine_restarted",
    "gpu_fault",
    "insufficient_evidence",
)

ACTIONS = (
    "recommend_compaction",
    "throttle_concurrency",
    "flush_session_radix",
    "drain_and_recycle",
    "quarantine_shape",
    "shrink_speculation_window",
    "raise_batch_capacity",
    "scale_out",
)

CLAIM_STATUSES = ("measured", "inferred", "not_proven", "synthetic")
HORIZONS = ("now", "minutes", "hours")
