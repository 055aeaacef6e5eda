"""SGLang dialect, old (``model_name`` only) and new label sets.

Names checked against sgl-project/sglang ``python/sglang/srt/metrics/collector.py`` (search corpus
"code", 2025-26 version) and the two SGLang captures in shared/fixtures:
- scheduler gauges ``token_usage``, ``num_running_reqs``, ``num_queue_reqs``, ``cache_hit_rate``,
  ``spec_accept_length``, ``spec_accept_rate``; newer servers label them ``engine_type``, ``tp_rank``,
  ``pp_rank``, ``moe_ep_rank`` (+ ``dp_rank`` with data parallelism, ``pid`` on the gauges that
  have no multiprocess mode). Every TP/PP rank runs a scheduler over the *same* batch and KV pool,
  so ranks are copies: max, never sum. DP ranks are separate schedulers: counts add, KV usage max.
- counters ``num_retracted_requests_total`` (newer; older pages only have the per-request
  ``num_retractions`` histogram, whose ``_sum`` grows by every retraction at request finish),
  ``realtime_tokens_total{mode=prefill_cache|prefill_compute|decode}``;
- tokenizer-side (``model_name`` only): ``prompt_tokens_total``, ``generation_tokens_total``,
  ``num_requests_total``, ``num_aborted_requests_total``, histograms ``time_to_first_token_seconds``,
  ``inter_token_latency_seconds`` (0.3/0.4: ``time_per_output_token_seconds``, observed once per
  token: its count tracks generation_tokens in the 0.3/0.4 capture), ``e2e_request_latency_seconds``,
  ``queue_time_seconds`` (has an ``le="0.0"`` bucket), ``prompt_tokens_histogram`` (optional).
"""

from __future__ import annotations

from collections.abc import Mapping

from inferguard.normalise.dialect import Dialect, Histo, Series, by_model_name, put, rate, ratio

_DP = ("dp_rank",)

_GAUGES = (
    Series("kv", ("sglang:token_usage",), sum_by=_DP, across="max"),
    Series("running", ("sglang:num_running_reqs",), sum_by=_DP),
    Series("waiting", ("sglang:num_queue_reqs",), sum_by=_DP),
    Series("cache_hit_rate", ("sglang:cache_hit_rate",), across="max"),
    Series("spec_accept_length", ("sglang:spec_accept_length",), across="max"),
    Series("spec_accept_rate", ("sglang:spec_accept_rate",), across="max"),
)

_COUNTERS = (
    Series("prompt_tokens", ("sglang:prompt_tokens_total",), sum_by=_DP),
    Series("generation_tokens", ("sglang:generation_tokens_total",), sum_by=_DP),
    Series("finished", ("sglang:num_requests_total",), sum_by=_DP),
    Series("abort", ("sglang:num_aborted_requests_total",), sum_by=_DP),
    Series("retracted", ("sglang:num_retracted_requests_total",), sum_by=_DP),
    Series("retractions_sum", ("sglang:num_retractions_sum",), sum_by=_DP),
    Series("prefill_cache", ("sglang:realtime_tokens_total",), match=("mode", "prefill_cache"), sum_by=_DP),
    Series("prefill_compute", ("sglang:realtime_tokens_total",), match=("mode", "prefill_compute"),
           sum_by=_DP),
)

_Q3 = ((0.5, "_p50_s"), (0.95, "_p95_s"), (0.99, "_p99_s"))


def _q(prefix: str) -> tuple[tuple[float, str], ...]:
    return tuple((q, prefix + suffix) for q, suffix in _Q3)


_HISTOGRAMS = (
    Histo("ttft", ("sglang:time_to_first_token_seconds",), _q("ttft"), sum_by=_DP),
    Histo("itl", ("sglang:inter_token_latency_seconds", "sglang:time_per_output_token_seconds"), _q("itl"),
          sum_by=_DP),
    Histo("e2e", ("sglang:e2e_request_latency_seconds",), _q("e2e"), sum_by=_DP),
    Histo("queue", ("sglang:queue_time_seconds",), _q("queue_time"), sum_by=_DP),
    Histo("prompt_len", ("sglang:prompt_tokens_histogram",), ((0.5, "prompt_len_p50"), (0.99, "prompt_len_p99")),
          sum_by=_DP),
)


def _derive(g: Mapping[str, float], c: Mapping[str, float], d: Mapping[str, float] | None,
            elapsed: float) -> dict[str, float]:
    out: dict[str, float] = {}
    put(out, "kv_usage", g.get("kv"))
    put(out, "requests_running", g.get("running"))
    put(out, "requests_waiting", g.get("waiting"))
    windowed_cache = "prefill_cache" in c and "prefill_compute" in c
    if not windowed_cache:
        put(out, "prefix_cache_hit_ratio", g.get("cache_hit_rate"))
    # The scheduler prints spec gauges as 0.0 when speculative decoding is off; an accept length
    # (>= 1 whenever drafts run) of 0 means "not running", which must not read as a collapse.
    length = g.get("spec_accept_length")
    if length is not None and length > 0:
        put(out, "spec_accept_ratio", g.get("spec_accept_rate"))
    if d is None:
        return out
    put(out, "prompt_tokens_per_s", rate(d, "prompt_tokens", elapsed))
    put(out, "generation_tokens_per_s", rate(d, "generation_tokens", elapsed))
    put(out, "requests_finished_per_s", rate(d, "finished", elapsed))
    put(out, "requests_abort_per_s", rate(d, "abort", elapsed))
    if "retracted" in c:
        put(out, "retractions_per_s", rate(d, "retracted", elapsed))
    else:
        put(out, "retractions_per_s", rate(d, "retractions_sum", elapsed))
    if windowed_cache and "prefill_cache" in d and "prefill_compute" in d:
        queried = {"hit": d["prefill_cache"], "all": d["prefill_cache"] + d["prefill_compute"]}
        put(out, "prefix_cache_hit_ratio", ratio(queried, "hit", "all"))
        put(out, "prefix_cache_queries_per_s", queried["all"] / elapsed)
    return out


SGLANG = Dialect("sglang", by_model_name, _GAUGES, _COUNTERS, _HISTOGRAMS, _derive,
                 ("kv_usage", "requests_running", "requests_waiting"), model_label="model_name")

MARKERS = ("sglang:num_running_reqs", "sglang:token_usage", "sglang:num_queue_reqs",
           "sglang:prompt_tokens_total", "sglang:time_to_first_token_seconds_bucket")
