"""vLLM dialect, V0 and V1 engines, across the metric renames.

Names checked against (search corpus "code"):
- vllm-project/vllm ``vllm/v1/metrics/loggers.py`` (V1, 0.9/0.10 era): labels ``model_name`` and
  ``engine`` (one value per data-parallel EngineCore); ``vllm:gpu_cache_usage_perc`` deprecated in
  0.9 and printed *beside* ``vllm:kv_cache_usage_perc``; ``vllm:gpu_prefix_cache_{queries,hits}``
  beside ``vllm:prefix_cache_{queries,hits}``; ``vllm:request_success{finished_reason}`` pre-created
  for every reason; ``vllm:time_per_output_token_seconds`` (later ``vllm:inter_token_latency_seconds``);
  ``kv_cache_usage_perc`` has no ``multiprocess_mode``, hence a ``pid`` label in multiprocess mode.
- spec decoding counters ``vllm:spec_decode_num_{accepted,draft}_tokens_total`` (V1
  ``vllm/v1/spec_decode/metrics.py``; V0 ``vllm/engine/metrics.py`` has the same counter names).
- V0 ``vllm/engine/metrics.py`` and the aibrix V0 capture in shared/fixtures: ``num_requests_swapped``,
  ``cpu_cache_usage_perc``, ``gpu_prefix_cache_hit_rate`` (-1 when prefix caching is off), no
  ``engine`` label, finish-reason children created lazily.
- The two real V1 captures in shared/fixtures (2026-03 and 2026-05 builds).

Aggregation over ``engine`` (data parallelism): KV usage is the max over engines (each engine has its
own pool; the fullest one is what preempts), queue/batch sizes and counters are summed (separate
queues, separate work). ``pid`` and any other label: copies of one value, max taken.
"""

from __future__ import annotations

from collections.abc import Mapping

from inferguard.normalise.dialect import Dialect, Histo, Series, by_model_name, put, rate, ratio

_E = ("engine",)

_GAUGES = (
    Series("kv", ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"), sum_by=_E, across="max"),
    Series("running", ("vllm:num_requests_running",), sum_by=_E),
    Series("waiting", ("vllm:num_requests_waiting",), sum_by=_E),
    Series("swapped", ("vllm:num_requests_swapped",), sum_by=_E),
    Series("hit_rate_gauge", ("vllm:gpu_prefix_cache_hit_rate",), across="max"),
)

_COUNTERS = (
    Series("preemptions", ("vllm:num_preemptions_total",), sum_by=_E),
    Series("prompt_tokens", ("vllm:prompt_tokens_total",), sum_by=_E),
    Series("generation_tokens", ("vllm:generation_tokens_total",), sum_by=_E),
    Series("prefix_queries", ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"),
           sum_by=_E),
    Series("prefix_hits", ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"), sum_by=_E),
    Series("finished", ("vllm:request_success_total",), sum_by=("engine", "finished_reason")),
    Series("error", ("vllm:request_success_total",), match=("finished_reason", "error"), sum_by=_E),
    Series("abort", ("vllm:request_success_total",), match=("finished_reason", "abort"), sum_by=_E),
    Series("spec_accepted", ("vllm:spec_decode_num_accepted_tokens_total",), sum_by=_E),
    Series("spec_draft", ("vllm:spec_decode_num_draft_tokens_total",), sum_by=_E),
)

_Q3 = (0.5, 0.95, 0.99)


def _q(prefix: str, unit: str = "_s", qs: tuple[float, ...] = _Q3) -> tuple[tuple[float, str], ...]:
    return tuple((q, f"{prefix}_p{round(q * 100)}{unit}") for q in qs)


_HISTOGRAMS = (
    Histo("ttft", ("vllm:time_to_first_token_seconds",), _q("ttft"), sum_by=_E),
    Histo("itl", ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"), _q("itl"),
          sum_by=_E),
    Histo("e2e", ("vllm:e2e_request_latency_seconds",), _q("e2e"), sum_by=_E),
    Histo("queue", ("vllm:request_queue_time_seconds",), _q("queue_time"), sum_by=_E),
    Histo("prompt_len", ("vllm:request_prompt_tokens",), _q("prompt_len", "", (0.5, 0.99)), sum_by=_E),
)


def _derive(g: Mapping[str, float], c: Mapping[str, float], d: Mapping[str, float] | None,
            elapsed: float) -> dict[str, float]:
    out: dict[str, float] = {}
    put(out, "kv_usage", g.get("kv"))
    put(out, "requests_running", g.get("running"))
    put(out, "requests_waiting", g.get("waiting"))
    put(out, "requests_swapped", g.get("swapped"))
    if "prefix_queries" not in c:
        # V0 only has the engine's own gauge; -1 means prefix caching is off (unknown, not 0). It is a
        # since-start block hit rate, so it moves slowly: the best there is on V0, not a window ratio.
        hr = g.get("hit_rate_gauge")
        if hr is not None and hr >= 0:
            out["prefix_cache_hit_ratio"] = hr
    if d is None:
        return out
    put(out, "preemptions_per_s", rate(d, "preemptions", elapsed))
    put(out, "prompt_tokens_per_s", rate(d, "prompt_tokens", elapsed))
    put(out, "generation_tokens_per_s", rate(d, "generation_tokens", elapsed))
    put(out, "prefix_cache_queries_per_s", rate(d, "prefix_queries", elapsed))
    put(out, "prefix_cache_hit_ratio", ratio(d, "prefix_hits", "prefix_queries"))
    put(out, "requests_finished_per_s", rate(d, "finished", elapsed))
    put(out, "requests_error_per_s", rate(d, "error", elapsed))
    put(out, "requests_abort_per_s", rate(d, "abort", elapsed))
    put(out, "error_ratio", ratio(d, "error", "finished"))
    put(out, "spec_accept_ratio", ratio(d, "spec_accepted", "spec_draft"))
    return out


_LAZY = {"error": "finished", "abort": "finished"}
_CORE = ("kv_usage", "requests_running", "requests_waiting")

VLLM_V1 = Dialect("vllm-v1", by_model_name, _GAUGES, _COUNTERS, _HISTOGRAMS, _derive, _CORE, _LAZY,
                  model_label="model_name")
VLLM_V0 = Dialect("vllm-v0", by_model_name, _GAUGES, _COUNTERS, _HISTOGRAMS, _derive,
                  (*_CORE, "requests_swapped"), _LAZY, model_label="model_name")

# Names only one engine era prints (sample names; families for histograms are checked via _bucket).
V0_MARKERS = ("vllm:num_requests_swapped", "vllm:gpu_prefix_cache_hit_rate")
V1_MARKERS = (
    "vllm:kv_cache_usage_perc",
    "vllm:prefix_cache_queries_total",
    "vllm:gpu_prefix_cache_queries_total",
    "vllm:inter_token_latency_seconds_bucket",
)
