"""Render one simulated engine as the /metrics page a real vLLM V1, vLLM V0, SGLang or dcgm-exporter writes.

Names, label sets, label order, types, HELP text, histogram bounds, sample order and number formatting
follow the real captures in the shared fixtures (see docs/simulator.md for the few names that are not in
any capture and where they come from). Text is built directly with cached label strings: a 1,000-target
simulator renders every page on every scrape, so this is the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from inferguard.errors import ConfigError
from inferguard.simulate import buckets as B
from inferguard.simulate.model import FINISH_REASONS, EngineModel, Histogram

DIALECTS = ("vllm-v1", "vllm-v0", "sglang", "dcgm")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The marker InferGuard reads to tag incidents from this simulator as synthetic.
SIMULATOR_INFO = "inferguard_simulator_info"


def go_float(value: float) -> str:
    """prometheus_client's ``floatToGoString`` (typed here): ``0.0``, ``8.128902e+06``, ``+Inf``."""
    d = float(value)
    if math.isinf(d):
        return "+Inf" if d > 0 else "-Inf"
    if math.isnan(d):
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def fmt(value: float) -> str:
    """Python prometheus_client number format, with a fast path for the small integers most samples are."""
    if type(value) is int and 0 <= value < 1_000_000:
        return f"{value}.0"
    return go_float(value)


def fmt_go(value: float) -> str:
    """dcgm-exporter (Go) format: integers bare, floats with six decimals (``35.686000``)."""
    if type(value) is int:
        return str(value)
    return f"{value:.6f}"


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}" if pairs else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Hist:
    """Cached line prefixes for one histogram family at one label set."""

    __slots__ = ("bounds", "bucket_prefixes", "count_prefix", "name", "sum_prefix")

    def __init__(self, name: str, bounds: tuple[float, ...], base: list[tuple[str, str]]) -> None:
        self.name = name
        self.bounds = bounds
        self.bucket_prefixes = []
        for le in [*(go_float(b) for b in bounds), "+Inf"]:
            pairs = sorted([*base, ("le", le)])
            self.bucket_prefixes.append(f"{name}_bucket{_labels(pairs)} ")
        plain = _labels(sorted(base))
        self.count_prefix = f"{name}_count{plain} "
        self.sum_prefix = f"{name}_sum{plain} "

    def lines(self, out: list[str], h: Histogram, sum_first: bool) -> None:
        cum = h.cumulative(self.bounds)
        if sum_first:  # vLLM V0 and SGLang print _sum before the buckets
            out.append(self.sum_prefix + fmt(h.sum))
        out.extend(p + fmt(c) for p, c in zip(self.bucket_prefixes, cum, strict=True))
        out.append(self.count_prefix + fmt(h.count))
        if not sum_first:
            out.append(self.sum_prefix + fmt(h.sum))


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


class PageRenderer:
    """Renders one target's page. Build once per target; call ``render`` per scrape."""

    def __init__(self, dialect: str, model_name: str, target_index: int = 0, seed: int = 0) -> None:
        if dialect not in DIALECTS:
            raise ConfigError("dialect", f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
        self.dialect = dialect
        self.model_name = model_name
        self.target_index = target_index
        self.seed = seed
        m = _escape(model_name)
        self._renderers: dict[str, Callable[[EngineModel, str], str]] = {
            "vllm-v1": self._v1, "vllm-v0": self._v0, "sglang": self._sglang, "dcgm": self._dcgm,
        }
        if dialect == "vllm-v1":
            self._base = [("engine", "0"), ("model_name", m)]
        elif dialect == "vllm-v0":
            self._base = [("model_name", m)]
        elif dialect == "sglang":
            self._base = [("model_name", m)]
            self._sched = [("engine_type", "unified"), ("model_name", m), ("moe_ep_rank", "0"),
                           ("pp_rank", "0"), ("tp_rank", "0")]
        else:
            uuid = f"GPU-{seed & 0xFFFFFFFF:08x}-5a1e-4000-8000-{target_index:012x}"
            # dcgm-exporter's label order is fixed, not sorted (see the L40S capture)
            self._base = [("gpu", "0"), ("UUID", uuid), ("pci_bus_id", "00000000:00:07.0"),
                          ("device", "nvidia0"), ("modelName", "NVIDIA L40S"),
                          ("Hostname", f"sim-{target_index}"), ("DCGM_FI_DRIVER_VERSION", "595.58.03")]
        self._lbl = _labels(sorted(self._base)) if dialect != "dcgm" else _labels(self._base)
        self._hist_cache: dict[tuple[str, tuple[float, ...]], _Hist] = {}
        self._label_cache: dict[tuple[tuple[str, str], ...], str] = {}

    def render(self, model: EngineModel) -> str:
        scenario = model.scenario.name
        return self._renderers[self.dialect](model, scenario)

    # -- helpers ------------------------------------------------------------------------------------

    def _h(self, name: str, bounds: tuple[float, ...], base: list[tuple[str, str]] | None = None) -> _Hist:
        key = (name, bounds)
        hist = self._hist_cache.get(key)
        if hist is None:
            hist = self._hist_cache[key] = _Hist(name, bounds, list(self._base if base is None else base))
        return hist

    def _with(self, *extra: tuple[str, str], base: list[tuple[str, str]] | None = None) -> str:
        key = (*extra, *(base or ()))
        text = self._label_cache.get(key)
        if text is None:
            text = self._label_cache[key] = _labels(sorted([*(self._base if base is None else base), *extra]))
        return text

    @staticmethod
    def _info(out: list[str], scenario: str, go: bool = False) -> None:
        _family(out, SIMULATOR_INFO, "gauge",
                "Synthetic engine served by inferguard simulate; incidents it causes are synthetic.")
        out.append(f'{SIMULATOR_INFO}{{scenario="{scenario}"}} {"1" if go else "1.0"}')

    # -- vLLM V1 ------------------------------------------------------------------------------------

    def _v1(self, model: EngineModel, scenario: str) -> str:
        st = model.stats
        created = fmt(st.created)
        lbl = self._lbl
        out: list[str] = []
        _family(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
        out.append(f"process_start_time_seconds {fmt(st.created)}")

        def gauge(name: str, help_text: str, value: float) -> None:
            _family(out, name, "gauge", help_text)
            out.append(f"{name}{lbl} {fmt(value)}")

        def counter(name: str, help_text: str, value: float) -> None:
            _family(out, name + "_total", "counter", help_text)
            out.append(f"{name}_total{lbl} {fmt(value)}")
            _family(out, name + "_created", "gauge", help_text)
            out.append(f"{name}_created{lbl} {created}")

        def labelled(name: str, help_text: str, key: str, values: dict[str, int]) -> None:
            _family(out, name + "_total", "counter", help_text)
            out.extend(f"{name}_total{self._with((key, k))} {fmt(v)}" for k, v in values.items())
            _family(out, name + "_created", "gauge", help_text)
            out.extend(f"{name}_created{self._with((key, k))} {created}" for k in values)

        def hist(name: str, help_text: str, bounds: tuple[float, ...], h: Histogram) -> None:
            _family(out, name, "histogram", help_text)
            self._h(name, bounds).lines(out, h, sum_first=False)
            _family(out, name + "_created", "gauge", help_text)
            out.append(f"{name}_created{lbl} {created}")

        gauge("vllm:num_requests_running", "Number of requests in model execution batches.", len(model.running))
        gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", len(model.waiting))
        _family(out, "vllm:num_requests_waiting_by_reason", "gauge",
                "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for scheduling "
                "capacity; 'deferred' = deferred by transient constraints (LoRA budget, KV transfer, blocked "
                "status). Sum of all reasons equals vllm:num_requests_waiting.")
        out.append(f"vllm:num_requests_waiting_by_reason{self._with(('reason', 'capacity'))} "
                   f"{fmt(len(model.waiting))}")
        out.append(f"vllm:num_requests_waiting_by_reason{self._with(('reason', 'deferred'))} 0.0")
        gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", model.kv_usage)
        counter("vllm:prefix_cache_queries",
                "Prefix cache queries, in terms of number of queried tokens.", st.prefix_queries)
        counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", st.prefix_hits)
        counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.", st.preemptions)
        counter("vllm:prompt_tokens", "Number of prefill tokens processed.", st.prompt_tokens)
        labelled("vllm:prompt_tokens_by_source", "Number of prompt tokens by source.", "source", {
            "local_compute": st.prompt_tokens - st.prompt_tokens_cached,
            "local_cache_hit": st.prompt_tokens_cached, "external_kv_transfer": 0})
        counter("vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external).",
                st.prompt_tokens_cached)
        counter("vllm:prompt_tokens_recomputed", "Number of cached tokens recomputed for forward pass.",
                st.prompt_tokens_recomputed)
        counter("vllm:generation_tokens", "Number of generation tokens processed.", st.generation_tokens)
        labelled("vllm:request_success", "Count of successfully processed requests.", "finished_reason",
                 {r: st.finished[r] for r in FINISH_REASONS})
        k = model.config.spec_tokens
        if k:  # present only when speculative decoding is configured, as in vLLM
            counter("vllm:spec_decode_num_drafts", "Number of spec decoding drafts.", st.spec_drafts)
            counter("vllm:spec_decode_num_draft_tokens", "Number of draft tokens.", st.spec_draft_tokens)
            counter("vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.", st.spec_accepted)
            weights = [k - i for i in range(k)]  # earlier positions are accepted more often
            total_w = sum(weights)
            labelled("vllm:spec_decode_num_accepted_tokens_per_pos", "Accepted tokens per draft position.",
                     "position", {str(i): st.spec_accepted * w // total_w for i, w in enumerate(weights)})
        h = st.h
        hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", B.TOKENS_1_2_5, h["prompt_len"])
        hist("vllm:request_generation_tokens", "Number of generation tokens processed.", B.TOKENS_1_2_5,
             h["gen_len"])
        hist("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.",
             B.ITERATION_TOKENS_V1, h["iteration_tokens"])
        hist("vllm:request_max_num_generation_tokens",
             "Histogram of maximum number of requested generation tokens.", B.TOKENS_1_2_5, h["max_tokens"])
        hist("vllm:request_params_n", "Histogram of the n request parameter.", B.PARAMS_N, h["params_n"])
        hist("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", B.TOKENS_1_2_5,
             h["max_tokens"])
        hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", B.TTFT_V1,
             h["ttft"])
        hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", B.ITL_V1, h["itl"])
        hist("vllm:request_time_per_output_token_seconds",
             "Histogram of time_per_output_token_seconds per request.", B.ITL_V1, h["tpot"])
        hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
             B.REQUEST_TIME_V1, h["e2e"])
        hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
             B.REQUEST_TIME_V1, h["queue"])
        hist("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.",
             B.REQUEST_TIME_V1, h["inference"])
        hist("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.",
             B.REQUEST_TIME_V1, h["prefill"])
        hist("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.",
             B.REQUEST_TIME_V1, h["decode"])
        hist("vllm:request_prefill_kv_computed_tokens",
             "Histogram of new KV tokens computed during prefill (excluding cached tokens).", B.TOKENS_1_2_5,
             h["prefill_computed"])
        cfg = model.config
        _family(out, "vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
        out.append(
            f'vllm:cache_config_info{{block_size="{cfg.block_size}",cache_dtype="auto",'
            f'enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",'
            f'num_cpu_blocks="None",num_gpu_blocks="{cfg.num_gpu_blocks}",num_gpu_blocks_override="None",'
            f'prefix_caching_hash_algo="sha256",sliding_window="None"}} 1.0')
        self._info(out, scenario)
        out.append("")
        return "\n".join(out)

    # -- vLLM V0 (0.7) ------------------------------------------------------------------------------

    def _v0(self, model: EngineModel, scenario: str) -> str:
        st = model.stats
        lbl = self._lbl
        cfg = model.config
        out: list[str] = []

        def one(name: str, kind: str, help_text: str, value: float) -> None:
            _family(out, name, kind, help_text)
            out.append(f"{name}{lbl} {fmt(value)}")

        def hist(name: str, help_text: str, bounds: tuple[float, ...], h: Histogram) -> None:
            _family(out, name, "histogram", help_text)
            self._h(name, bounds).lines(out, h, sum_first=True)

        _family(out, "vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
        out.append(
            f'vllm:cache_config_info{{block_size="{cfg.block_size}",cache_dtype="auto",'
            f'calculate_kv_scales="False",cpu_offload_gb="0",enable_prefix_caching="True",'
            f'gpu_memory_utilization="0.9",is_attention_free="False",num_cpu_blocks="{cfg.num_cpu_blocks}",'
            f'num_gpu_blocks="{cfg.num_gpu_blocks}",num_gpu_blocks_override="None",sliding_window="None",'
            f'swap_space_bytes="{cfg.num_cpu_blocks * cfg.block_size * 131072}"}} 1.0')
        one("vllm:num_requests_running", "gauge", "Number of requests currently running on GPU.",
            len(model.running))
        one("vllm:num_requests_swapped", "gauge", "Number of requests swapped to CPU.", len(model.swapped))
        one("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", len(model.waiting))
        one("vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage.", model.kv_usage)
        one("vllm:cpu_cache_usage_perc", "gauge", "CPU KV-cache usage. 1 means 100 percent usage.",
            model.cpu_kv_usage)
        # V0 reported a since-start hit rate (so it moves slowly), and -1 before any query
        rate = st.prefix_hits / st.prefix_queries if st.prefix_queries else -1.0
        one("vllm:cpu_prefix_cache_hit_rate", "gauge", "CPU prefix cache block hit rate.", -1.0)
        one("vllm:gpu_prefix_cache_hit_rate", "gauge", "GPU prefix cache block hit rate.", rate)
        _family(out, "vllm:lora_requests_info", "gauge", "Running stats on lora requests.")
        # an info gauge whose value is the wall clock, as V0 wrote it
        out.append(f'vllm:lora_requests_info{{max_lora="0",running_lora_adapters="",waiting_lora_adapters=""}} '
                   f"{fmt(model.now)}")
        one("vllm:num_preemptions_total", "counter", "Cumulative number of preemption from the engine.",
            st.preemptions)
        one("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", st.prompt_tokens)
        one("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.",
            st.generation_tokens)
        _family(out, "vllm:request_success_total", "counter", "Count of successfully processed requests.")
        # a labelled V0 counter appears only once that label set was incremented
        out.extend(f"vllm:request_success_total{self._with(('finished_reason', r))} {fmt(n)}"
                   for r, n in st.finished.items() if n)
        if cfg.spec_tokens:
            accept = st.spec_accepted / st.spec_draft_tokens if st.spec_draft_tokens else 0.0
            one("vllm:spec_decode_draft_acceptance_rate", "gauge", "Speulative token acceptance rate.", accept)
            emitted = st.spec_accepted + st.spec_drafts
            max_emit = st.spec_drafts * (cfg.spec_tokens + 1)
            one("vllm:spec_decode_efficiency", "gauge", "Speculative decoding system efficiency.",
                emitted / max_emit if max_emit else 0.0)
            one("vllm:spec_decode_num_accepted_tokens_total", "counter", "Number of accepted tokens.",
                st.spec_accepted)
            one("vllm:spec_decode_num_draft_tokens_total", "counter", "Number of draft tokens.",
                st.spec_draft_tokens)
            one("vllm:spec_decode_num_emitted_tokens_total", "counter", "Number of emitted tokens.", emitted)
        h = st.h
        hist("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.",
             B.ITERATION_TOKENS_V0, h["iteration_tokens"])
        hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", B.TTFT_V0,
             h["ttft"])
        hist("vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.", B.TPOT_V0,
             h["itl"])
        hist("vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.",
             B.REQUEST_TIME_V0, h["e2e"])
        hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
             B.REQUEST_TIME_V0, h["queue"])
        hist("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.",
             B.REQUEST_TIME_V0, h["inference"])
        hist("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.",
             B.REQUEST_TIME_V0, h["prefill"])
        hist("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.",
             B.REQUEST_TIME_V0, h["decode"])
        hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", B.TOKENS_1_2_5, h["prompt_len"])
        hist("vllm:request_generation_tokens", "Number of generation tokens processed.", B.TOKENS_1_2_5,
             h["gen_len"])
        hist("vllm:request_max_num_generation_tokens",
             "Histogram of maximum number of requested generation tokens.", B.TOKENS_1_2_5, h["max_tokens"])
        hist("vllm:request_params_n", "Histogram of the n request parameter.", B.PARAMS_N, h["params_n"])
        hist("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", B.TOKENS_1_2_5,
             h["max_tokens"])
        self._info(out, scenario)
        out.append("")
        return "\n".join(out)

    # -- SGLang (0.5.x) -----------------------------------------------------------------------------

    def _sglang(self, model: EngineModel, scenario: str) -> str:
        st = model.stats
        cfg = model.config
        sched = self._sched
        slbl = _labels(sched)
        lbl = self._lbl
        out: list[str] = []

        def g(name: str, help_text: str, value: float, labels: str = slbl) -> None:
            _family(out, name, "gauge", help_text)
            out.append(f"{name}{labels} {fmt(value)}")

        def hist(name: str, help_text: str, bounds: tuple[float, ...], h: Histogram,
                 base: list[tuple[str, str]] | None = None) -> None:
            _family(out, name, "histogram", help_text)
            self._h(name, bounds, base).lines(out, h, sum_first=True)

        h = st.h
        hist("sglang:queue_time_seconds", "Histogram of queueing time in seconds.", B.QUEUE_SGLANG, h["queue"],
             sched)
        _family(out, "sglang:realtime_tokens_total", "counter",
                "Total number of tokens processed (updated on each log interval).")
        for mode, value in (("prefill_compute", st.prompt_tokens - st.prompt_tokens_cached),
                            ("prefill_cache", st.prompt_tokens_cached), ("decode", st.generation_tokens)):
            out.append(f"sglang:realtime_tokens_total{self._with(('mode', mode), base=sched)} {fmt(value)}")
        # multiprocess gauges carry the scheduler's pid, which changes on every restart
        pid = str(4000 + (self.seed % 1000) * 7 + model.restarts)
        g("sglang:num_retracted_reqs", "The number of retracted requests.", st.retracted_last,
          self._with(("pid", pid), base=sched))
        used_tokens = model.used_blocks * cfg.block_size
        g("sglang:num_running_reqs", "The number of running requests.", len(model.running))
        g("sglang:num_used_tokens", "The number of used tokens.", used_tokens)
        g("sglang:token_usage", "The token usage.", round(model.kv_usage, 4))
        g("sglang:gen_throughput", "The generation throughput (token/s).", round(model.last_gen_tokens_per_s, 3))
        g("sglang:num_queue_reqs", "The number of requests in the waiting queue.", len(model.waiting))
        rate = model.recent_hit_rate
        g("sglang:cache_hit_rate", "The prefix cache hit rate.", 0.0 if rate is None else rate)
        g("sglang:max_total_num_tokens", "Maximum total number of tokens in the KV cache pool.",
          cfg.num_gpu_blocks * cfg.block_size)
        if cfg.spec_tokens:
            accept = st.spec_accepted / st.spec_draft_tokens if st.spec_draft_tokens else 0.0
            g("sglang:spec_accept_length", "The average acceptance length of speculative decoding.",
              1.0 + accept * cfg.spec_tokens if st.spec_draft_tokens else 0.0)
            g("sglang:spec_accept_rate", "The average acceptance rate of speculative decoding "
              "(`accepted tokens / total draft tokens` in batch).", accept)
        g("sglang:utilization", "The utilization.", round(model.busy_ratio, 4))
        hist("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", B.TTFT_SGLANG,
             h["ttft"])
        hist("sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", B.ITL_SGLANG,
             h["itl"])
        hist("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds",
             B.E2E_SGLANG, h["e2e"])
        hist("sglang:num_retractions", "Histogram of retraction counts per request.", B.RETRACTIONS_SGLANG,
             h["retractions"])
        for name, help_text, value in (
            ("sglang:prompt_tokens_total", "Number of prefill tokens processed.", st.prompt_tokens),
            ("sglang:generation_tokens_total", "Number of generation tokens processed.", st.generation_tokens),
            ("sglang:num_requests_total", "Number of requests processed.", sum(st.finished.values())),
        ):
            _family(out, name, "counter", help_text)
            out.append(f"{name}{lbl} {fmt(value)}")
        self._info(out, scenario)
        out.append("")
        return "\n".join(out)

    # -- dcgm-exporter ------------------------------------------------------------------------------

    def _dcgm(self, model: EngineModel, scenario: str) -> str:
        lbl = self._lbl
        busy = model.busy_ratio
        fb_total = 46067  # MiB on an L40S (free + used + reserved in the capture)
        fb_reserved = 608
        fb_used = int((fb_total - fb_reserved) * 0.9)  # vLLM preallocates 90 % for weights and KV
        out: list[str] = []

        def g(name: str, kind: str, help_text: str, value: float) -> None:
            _family(out, name, kind, help_text)
            out.append(f"{name}{lbl} {fmt_go(value)}")

        g("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", 210 + int(2310 * busy))
        g("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", 405 if busy == 0 else 9001)
        g("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", 0)
        g("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", 32 + int(40 * busy))
        g("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", 35.686 + 300.0 * busy)
        g("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).",
          int(model.gpu_energy_mj))
        g("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", 0)
        g("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", round(100 * busy))
        g("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", round(60 * busy))
        g("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", 0)
        g("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", 0)
        g("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", model.xid)
        g("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", fb_total - fb_reserved - fb_used)
        g("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", fb_used)
        g("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB).", fb_reserved)
        g("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors.",
          model.gpu_ecc_dbe)
        g("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter",
          "Number of remapped rows for uncorrectable errors", model.gpu_ecc_dbe)
        g("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors", 0)
        g("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed", 0)
        g("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.", busy * 0.95)
        g("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active.",
          busy * 0.4)
        g("DCGM_FI_PROF_DRAM_ACTIVE", "gauge",
          "Ratio of cycles the device memory interface is active sending or receiving data.", 0.000131 + busy * 0.6)
        self._info(out, scenario, go=True)
        out.append("")
        return "\n".join(out)
