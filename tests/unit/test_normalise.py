"""TargetNormaliser, identify and KEEP on small synthetic pages (parsed by the real parser)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferguard.errors import ConfigError, InferGuardError
from inferguard.models import SIGNALS, Exposition, Signals
from inferguard.normalise import ENGINE_HINTS, KEEP, KEEP_NAMES, Normalised, TargetNormaliser, identify
from inferguard.sources.exposition import parse

M = 'model_name="m"'


def page(*lines: str) -> Exposition:
    return parse("\n".join(lines) + "\n", KEEP)


def only(result: Normalised) -> Signals:
    assert len(result.signals) == 1
    return result.signals[0]


def v1(running: float = 1, waiting: float = 0, kv: float = 0.5, preempt: float = 0, prompt: float = 0,
       gen: float = 0, extra: tuple[str, ...] = ()) -> Exposition:
    lab = f'{{engine="0",{M}}}'
    return page(
        f"vllm:num_requests_running{lab} {running}",
        f"vllm:num_requests_waiting{lab} {waiting}",
        f"vllm:kv_cache_usage_perc{lab} {kv}",
        f"vllm:num_preemptions_total{lab} {preempt}",
        f"vllm:prompt_tokens_total{lab} {prompt}",
        f"vllm:generation_tokens_total{lab} {gen}",
        *extra,
    )


# --- KEEP -------------------------------------------------------------------------------------------

def test_keep_reads_only_what_a_dialect_uses_and_never_created() -> None:
    assert KEEP("vllm:kv_cache_usage_perc")
    assert KEEP("vllm:time_to_first_token_seconds_bucket")
    assert KEEP("sglang:token_usage")
    assert KEEP("DCGM_FI_DEV_GPU_TEMP")
    assert not KEEP("vllm:time_to_first_token_seconds_sum")  # lifetime sums are never used
    assert not KEEP("vllm:prompt_tokens_created")
    assert not KEEP("python_gc_objects_collected_total")
    assert not any(n.endswith("_created") for n in KEEP_NAMES)


# --- identify -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("lines", "engine"),
    [
        ((f"vllm:num_requests_swapped{{{M}}} 0", f"vllm:num_requests_running{{{M}}} 0"), "vllm-v0"),
        ((f"vllm:kv_cache_usage_perc{{{M}}} 0",), "vllm-v1"),
        ((f'vllm:num_requests_running{{engine="0",{M}}} 0',), "vllm-v1"),
        ((f"vllm:num_requests_swapped{{{M}}} 0", f"vllm:kv_cache_usage_perc{{{M}}} 0"), "unknown"),
        ((f"vllm:num_requests_running{{{M}}} 0",), "unknown"),  # era cannot be told: not guessed
        ((f"sglang:num_running_reqs{{{M}}} 0",), "sglang"),
        ((f"sglang:num_running_reqs{{{M}}} 0", f"vllm:kv_cache_usage_perc{{{M}}} 0"), "unknown"),
        (('DCGM_FI_DEV_GPU_TEMP{gpu="0"} 40',), "dcgm"),
        (("# TYPE DCGM_FI_DEV_SM_CLOCK gauge", 'DCGM_FI_DEV_SM_CLOCK{gpu="0"} 210'), "dcgm"),
        (("# TYPE vllm:kv_cache_usage_perc gauge",), "vllm-v1"),  # typed, never set (multiprocess)
        (("# HELP foo vllm:kv_cache_usage_perc sglang:token_usage DCGM_FI_DEV_GPU_TEMP", "foo 1"), "unknown"),
        (("trtllm_request_success_total 2",), "unknown"),
    ],
)
def test_identify_from_names_only(lines: tuple[str, ...], engine: str) -> None:
    assert identify(page(*lines)) == engine


def test_unknown_engine_yields_no_signals() -> None:
    n = TargetNormaliser("t")
    r = n.update(0.0, page("dynamo_frontend_requests_total 3"))
    assert r == Normalised("unknown", (), False)


# --- windows, rates, restarts ---------------------------------------------------------------------------

def test_first_update_is_gauges_only_then_rates() -> None:
    n = TargetNormaliser("t")
    first = only(n.update(100.0, v1(running=3, waiting=2, kv=0.25, preempt=10, prompt=1000, gen=50)))
    assert dict(first.values) == {"kv_usage": 0.25, "requests_running": 3.0, "requests_waiting": 2.0}
    assert first.missing == () and not first.restarted
    second = only(n.update(130.0, v1(running=4, waiting=0, kv=0.5, preempt=40, prompt=4000, gen=650)))
    assert second.values["preemptions_per_s"] == pytest.approx(1.0)
    assert second.values["prompt_tokens_per_s"] == pytest.approx(100.0)
    assert second.values["generation_tokens_per_s"] == pytest.approx(20.0)
    assert second.values["requests_running"] == 4.0
    assert set(second.values) <= set(SIGNALS)


def test_counter_going_backwards_is_a_restart_with_no_rate_that_cycle() -> None:
    n = TargetNormaliser("t")
    n.update(0.0, v1(preempt=500, prompt=9000))
    r = n.update(5.0, v1(preempt=3, prompt=100))
    s = only(r)
    assert r.restarted and s.restarted
    assert "preemptions_per_s" not in s.values and "prompt_tokens_per_s" not in s.values
    assert s.values["kv_usage"] == 0.5  # gauges still reported
    after = only(n.update(10.0, v1(preempt=13, prompt=600)))  # new baseline is the post-restart page
    assert not after.restarted
    assert after.values["preemptions_per_s"] == pytest.approx(2.0)


def test_process_start_time_change_is_a_restart_even_if_counters_grew() -> None:
    n = TargetNormaliser("t")
    n.update(0.0, v1(prompt=10, extra=("process_start_time_seconds 1000.0",)))
    r = n.update(5.0, v1(prompt=20, extra=("process_start_time_seconds 2000.0",)))
    assert r.restarted and "prompt_tokens_per_s" not in only(r).values


def test_reset_forgets_history() -> None:
    n = TargetNormaliser("t")
    n.update(0.0, v1(prompt=10))
    n.reset()
    s = only(n.update(5.0, v1(prompt=20)))
    assert "prompt_tokens_per_s" not in s.values and not s.restarted


def test_non_increasing_time_gives_no_rates() -> None:
    n = TargetNormaliser("t")
    n.update(10.0, v1(prompt=10))
    assert "prompt_tokens_per_s" not in only(n.update(10.0, v1(prompt=20))).values


def test_engine_change_on_one_address_is_a_restart() -> None:
    n = TargetNormaliser("t")
    n.update(0.0, v1())
    r = n.update(5.0, page(f"sglang:num_running_reqs{{{M}}} 1", f"sglang:token_usage{{{M}}} 0.1"))
    assert r.engine == "sglang" and r.restarted


# --- aggregation over ranks, renames, pid -----------------------------------------------------------

def test_vllm_data_parallel_engines_kv_max_counts_summed() -> None:
    lines = []
    for e, (run, wait, kv, gen) in enumerate([(3, 1, 0.9, 100), (5, 2, 0.2, 300)]):
        lab = f'{{engine="{e}",{M}}}'
        lines += [f"vllm:num_requests_running{lab} {run}", f"vllm:num_requests_waiting{lab} {wait}",
                  f"vllm:kv_cache_usage_perc{lab} {kv}", f"vllm:generation_tokens_total{lab} {gen}"]
    n = TargetNormaliser("t")
    s = only(n.update(0.0, page(*lines)))
    assert s.values["kv_usage"] == 0.9
    assert s.values["requests_running"] == 8.0 and s.values["requests_waiting"] == 3.0
    bumped = [ln.replace(" 100", " 200").replace(" 300", " 500") for ln in lines]
    s2 = only(n.update(10.0, page(*bumped)))
    assert s2.values["generation_tokens_per_s"] == pytest.approx(30.0)  # (100 + 200) / 10


def test_deprecated_and_new_names_together_are_not_summed() -> None:
    def p(q: float, h: float) -> Exposition:
        lab = f'{{engine="0",{M}}}'
        return page(f"vllm:gpu_cache_usage_perc{lab} 0.7", f"vllm:kv_cache_usage_perc{lab} 0.7",
                    f"vllm:prefix_cache_queries_total{lab} {q}", f"vllm:prefix_cache_hits_total{lab} {h}",
                    f"vllm:gpu_prefix_cache_queries_total{lab} {q}", f"vllm:gpu_prefix_cache_hits_total{lab} {h}")
    n = TargetNormaliser("t")
    assert only(n.update(0.0, p(100, 50))).values["kv_usage"] == 0.7
    s = only(n.update(10.0, p(300, 100)))
    assert s.values["prefix_cache_queries_per_s"] == pytest.approx(20.0)
    assert s.values["prefix_cache_hit_ratio"] == pytest.approx(0.25)


def test_pid_copies_take_the_max() -> None:
    s = only(TargetNormaliser("t").update(0.0, page(
        f'vllm:kv_cache_usage_perc{{engine="0",{M},pid="11"}} 0.4',
        f'vllm:kv_cache_usage_perc{{engine="0",{M},pid="12"}} 0.6',
        f'vllm:num_requests_running{{engine="0",{M}}} 1',
    )))
    assert s.values["kv_usage"] == 0.6


def test_models_are_separate_signals() -> None:
    r = TargetNormaliser("t").update(0.0, page(
        'vllm:kv_cache_usage_perc{engine="0",model_name="b"} 0.2',
        'vllm:kv_cache_usage_perc{engine="0",model_name="a"} 0.1',
    ))
    assert [s.model for s in r.signals] == ["a", "b"]
    assert r.signals[0].missing == ("requests_running", "requests_waiting")


def test_missing_metric_is_absent_never_zero() -> None:
    s = only(TargetNormaliser("t").update(0.0, page(f'vllm:num_requests_running{{engine="0",{M}}} 2')))
    assert "kv_usage" not in s.values and "requests_waiting" not in s.values
    assert s.missing == ("kv_usage", "requests_waiting")


def test_sglang_tp_ranks_are_copies_dp_ranks_add() -> None:
    lines = []
    for dp, (run, kv) in enumerate([(10, 0.3), (20, 0.8)]):
        for tp in range(2):
            lab = f'{{dp_rank="{dp}",engine_type="unified",{M},pp_rank="0",tp_rank="{tp}"}}'
            lines += [f"sglang:num_running_reqs{lab} {run}", f"sglang:num_queue_reqs{lab} 1",
                      f"sglang:token_usage{lab} {kv}"]
    s = only(TargetNormaliser("t").update(0.0, page(*lines)))
    assert s.values["requests_running"] == 30.0  # 10 + 20, not 60
    assert s.values["requests_waiting"] == 2.0
    assert s.values["kv_usage"] == 0.8


def test_sglang_spec_gauges_at_zero_mean_spec_off() -> None:
    off = only(TargetNormaliser("t").update(0.0, page(
        f"sglang:token_usage{{{M}}} 0", f"sglang:spec_accept_length{{{M}}} 0", f"sglang:spec_accept_rate{{{M}}} 0")))
    assert "spec_accept_ratio" not in off.values
    on = only(TargetNormaliser("t").update(0.0, page(
        f"sglang:token_usage{{{M}}} 0", f"sglang:spec_accept_length{{{M}}} 2.4",
        f"sglang:spec_accept_rate{{{M}}} 0.47")))
    assert on.values["spec_accept_ratio"] == 0.47


def test_sglang_retractions_from_counter_or_histogram_sum() -> None:
    n = TargetNormaliser("t")
    n.update(0.0, page(f"sglang:token_usage{{{M}}} 0", f"sglang:num_retracted_requests_total{{{M}}} 5",
                       f"sglang:num_retractions_sum{{{M}}} 1"))
    s = only(n.update(10.0, page(f"sglang:token_usage{{{M}}} 0", f"sglang:num_retracted_requests_total{{{M}}} 25",
                                 f"sglang:num_retractions_sum{{{M}}} 100")))
    assert s.values["retractions_per_s"] == pytest.approx(2.0)  # the counter wins
    m = TargetNormaliser("t")
    m.update(0.0, page(f"sglang:token_usage{{{M}}} 0", f"sglang:num_retractions_sum{{{M}}} 1"))
    s = only(m.update(10.0, page(f"sglang:token_usage{{{M}}} 0", f"sglang:num_retractions_sum{{{M}}} 31")))
    assert s.values["retractions_per_s"] == pytest.approx(3.0)


def test_v0_hit_rate_sentinel_is_unknown() -> None:
    def p(v: float) -> Exposition:
        return page(f"vllm:num_requests_swapped{{{M}}} 0", f"vllm:gpu_prefix_cache_hit_rate{{{M}}} {v}")
    assert "prefix_cache_hit_ratio" not in only(TargetNormaliser("t").update(0.0, p(-1.0))).values
    assert only(TargetNormaliser("t").update(0.0, p(0.42))).values["prefix_cache_hit_ratio"] == 0.42


def test_finish_reasons_error_ratio_and_lazily_created_abort_child() -> None:
    def p(stop: float, abort: float | None) -> Exposition:
        lines = [f'vllm:request_success_total{{finished_reason="stop",{M}}} {stop}',
                 f"vllm:num_requests_swapped{{{M}}} 0"]
        if abort is not None:
            lines.append(f'vllm:request_success_total{{finished_reason="abort",{M}}} {abort}')
        return page(*lines)
    n = TargetNormaliser("t")
    n.update(0.0, p(10, None))
    s = only(n.update(10.0, p(30, 5)))
    assert s.values["requests_finished_per_s"] == pytest.approx(2.5)
    assert s.values["requests_abort_per_s"] == pytest.approx(0.5)  # child appeared: it started at 0
    assert "requests_error_per_s" not in s.values and "error_ratio" not in s.values  # V0: no such reason


def test_v1_error_ratio_and_spec_acceptance() -> None:
    def p(stop: float, err: float, acc: float, draft: float) -> Exposition:
        lab = f'engine="0",{M}'
        return page(f"vllm:kv_cache_usage_perc{{{lab}}} 0",
                    f'vllm:request_success_total{{{lab},finished_reason="stop"}} {stop}',
                    f'vllm:request_success_total{{{lab},finished_reason="error"}} {err}',
                    f"vllm:spec_decode_num_accepted_tokens_total{{{lab}}} {acc}",
                    f"vllm:spec_decode_num_draft_tokens_total{{{lab}}} {draft}")
    n = TargetNormaliser("t")
    n.update(0.0, p(100, 0, 1000, 3000))
    s = only(n.update(20.0, p(118, 2, 1300, 4000)))
    assert s.values["error_ratio"] == pytest.approx(0.1)
    assert s.values["requests_error_per_s"] == pytest.approx(0.1)
    assert s.values["spec_accept_ratio"] == pytest.approx(0.3)
    idle = only(n.update(40.0, p(118, 2, 1300, 4000)))
    assert "error_ratio" not in idle.values and "spec_accept_ratio" not in idle.values  # 0/0 is unknown
    assert idle.values["requests_finished_per_s"] == 0.0


# --- histograms ------------------------------------------------------------------------------------------

def _ttft(counts: list[float], bounds: tuple[str, ...] = ("0.1", "1.0", "10.0", "+Inf")) -> list[str]:
    return [f'vllm:kv_cache_usage_perc{{engine="0",{M}}} 0'] + [
        f'vllm:time_to_first_token_seconds_bucket{{engine="0",le="{b}",{M}}} {c}'
        for b, c in zip(bounds, counts, strict=True)]


def test_quantiles_come_from_the_window_not_the_lifetime() -> None:
    n = TargetNormaliser("t")
    # Lifetime: 1000 slow requests (1-10 s). Window: 100 fast ones (<= 0.1 s).
    n.update(0.0, page(*_ttft([0, 0, 1000, 1000])))
    s = only(n.update(30.0, page(*_ttft([100, 100, 1100, 1100]))))
    assert s.values["ttft_p50_s"] == pytest.approx(0.05)
    assert s.values["ttft_p99_s"] == pytest.approx(0.099)
    quiet = only(n.update(60.0, page(*_ttft([100, 100, 1100, 1100]))))
    assert not any(k.startswith("ttft_") for k in quiet.values)  # no observations: unknown


def test_bucket_bounds_compare_as_floats_and_decrease_is_restart() -> None:
    n = TargetNormaliser("t")
    n.update(0.0, page(*_ttft([1, 2, 3, 3], ("0.1", "1", "10", "+Inf"))))
    s = only(n.update(5.0, page(*_ttft([1, 4, 5, 5], ("0.10", "1.0", "1e1", "+Inf")))))
    assert s.values["ttft_p50_s"] == pytest.approx(0.55)  # 2 new obs in (0.1, 1]: rank 1 of 2
    r = n.update(10.0, page(*_ttft([0, 1, 1, 1])))
    assert r.restarted and "ttft_p50_s" not in only(r).values


def test_changed_bucket_layout_gives_no_quantile_but_no_restart() -> None:
    n = TargetNormaliser("t")
    n.update(0.0, page(*_ttft([1, 2, 3, 3])))
    r = n.update(5.0, page(*_ttft([1, 2, 3, 4, 4], ("0.1", "1.0", "10.0", "20.0", "+Inf"))))
    assert not r.restarted and "ttft_p50_s" not in only(r).values


# --- DCGM ------------------------------------------------------------------------------------------------

def _gpu(i: int, temp: str, power: str, ecc: float, extra: str = "") -> list[str]:
    lab = f'{{gpu="{i}",UUID="GPU-{i}"}}'
    lines = [f"DCGM_FI_DEV_GPU_TEMP{lab} {temp}", f"DCGM_FI_DEV_POWER_USAGE{lab} {power}",
             f"DCGM_FI_DEV_FB_USED{lab} 250", f"DCGM_FI_DEV_FB_FREE{lab} 750", f"DCGM_FI_DEV_GPU_UTIL{lab} 37",
             f"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{lab} {ecc}", f"DCGM_FI_DEV_XID_ERRORS{lab} 0"]
    if extra:
        lines.append(extra.replace("LAB", lab))
    return lines


def test_dcgm_per_gpu_units_and_sentinels() -> None:
    n = TargetNormaliser("t")
    r = n.update(0.0, page(*_gpu(0, "40", "100.5", 0, "DCGM_FI_DEV_CLOCKS_EVENT_REASONSLAB 4"),
                           *_gpu(1, "9223372036854775794", "140737488355330", 2)))
    assert r.engine == "dcgm" and [s.model for s in r.signals] == ["gpu0", "gpu1"]
    g0, g1 = r.signals
    assert dict(g0.values) == {"gpu_xid_error": 0.0, "gpu_temp_c": 40.0, "gpu_power_w": 100.5,
                               "gpu_throttle_reasons": 4.0, "gpu_fb_used_ratio": 0.25, "gpu_util": 0.37}
    assert "gpu_temp_c" not in g1.values and "gpu_power_w" not in g1.values  # "not supported"
    assert g1.missing == ("gpu_temp_c", "gpu_power_w")
    r2 = n.update(10.0, page(*_gpu(0, "41", "99", 0), *_gpu(1, "50", "80", 7)))
    assert r2.signals[0].values["gpu_ecc_dbe_per_s"] == 0.0
    assert r2.signals[1].values["gpu_ecc_dbe_per_s"] == pytest.approx(0.5)


def test_dcgm_old_throttle_name() -> None:
    s = TargetNormaliser("t").update(0.0, page(*_gpu(0, "40", "1", 0, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONSLAB 8")))
    assert s.signals[0].values["gpu_throttle_reasons"] == 8.0


# --- hints and bad input ----------------------------------------------------------------------------------

def test_engine_hint_settles_an_ambiguous_vllm_page_only() -> None:
    ambiguous = page(f"vllm:num_requests_running{{{M}}} 2", f"vllm:gpu_cache_usage_perc{{{M}}} 0.5")
    assert TargetNormaliser("t").update(0.0, ambiguous).engine == "unknown"
    s = only(TargetNormaliser("t", engine_hint="vllm-v1").update(0.0, ambiguous))
    assert s.engine == "vllm-v1" and s.values["kv_usage"] == 0.5
    # A hint never overrides what the names say, nor invents an engine on a foreign page.
    assert TargetNormaliser("t", "sglang").update(0.0, v1()).engine == "vllm-v1"
    assert TargetNormaliser("t", "vllm-v0").update(0.0, page("trtllm_x 1")).engine == "unknown"
    assert TargetNormaliser("t", "auto").engine_hint is None


def test_bad_hint_and_bad_input_are_typed_errors() -> None:
    with pytest.raises(ConfigError, match="engine_hint"):
        TargetNormaliser("t", engine_hint="tgi")
    for hint in ENGINE_HINTS:
        TargetNormaliser("t", engine_hint=hint)  # every advertised hint is accepted
    n = TargetNormaliser("t")
    with pytest.raises(InferGuardError, match="Exposition"):
        n.update(0.0, "vllm:num_requests_running 1")  # type: ignore[arg-type]
    with pytest.raises(InferGuardError, match="timestamp"):
        n.update(math.nan, v1())


def test_non_finite_values_are_unknown() -> None:
    s = only(TargetNormaliser("t").update(0.0, page(
        f'vllm:kv_cache_usage_perc{{engine="0",{M}}} NaN', f'vllm:num_requests_running{{engine="0",{M}}} +Inf')))
    assert "kv_usage" not in s.values and "requests_running" not in s.values


# --- hostile pages -------------------------------------------------------------------------------------

def test_odd_bucket_bounds_and_counts_are_skipped() -> None:
    n = TargetNormaliser("t")
    odd = ['le="abc"', 'le="NaN"', 'le="-Inf"']
    n.update(0.0, page(*_ttft([1, 2, 3, 3]), *(
        f'vllm:time_to_first_token_seconds_bucket{{engine="0",{o},{M}}} 1' for o in odd)))
    s = only(n.update(5.0, page(*_ttft([1, 4, 5, 5]), *(
        f'vllm:time_to_first_token_seconds_bucket{{engine="0",{o},{M}}} 9' for o in odd))))
    # le="-Inf" is a real (if absurd) bound: the window's p50 then sits there and is dropped as non-finite.
    assert all(math.isfinite(v) for v in s.values.values())
    assert set(s.values) <= set(SIGNALS)


_NAMES = sorted(KEEP_NAMES)
_LABEL_VALUES = st.sampled_from(["0", "1", "m", "", "error", "abort", "prefill_cache", "+Inf", "0.5", "x"])
_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**6).map(float))


@st.composite
def _pages(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 25))):
        name = draw(st.sampled_from(_NAMES))
        keys = draw(st.lists(st.sampled_from(["model_name", "engine", "le", "gpu", "finished_reason", "mode",
                                              "dp_rank", "tp_rank", "pid"]), unique=True, max_size=4))
        labels = ",".join(f'{k}="{draw(_LABEL_VALUES)}"' for k in keys)
        value = draw(_VALUES)
        text = "NaN" if math.isnan(value) else ("+Inf" if value == math.inf else "-Inf" if value == -math.inf
                                               else repr(value))
        lines.append(f"{name}{{{labels}}} {text}" if labels else f"{name} {text}")
    return "\n".join(lines) + "\n# end\n"


@settings(max_examples=150, deadline=None)
@given(_pages(), _pages(), st.floats(min_value=0.001, max_value=1e6))
def test_any_page_pair_yields_only_known_finite_signals(a: str, b: str, elapsed: float) -> None:
    n = TargetNormaliser("t")
    for ts, text in ((1000.0, a), (1000.0 + elapsed, b)):
        r = n.update(ts, parse(text, KEEP))
        assert r.engine in ("vllm-v1", "vllm-v0", "sglang", "dcgm", "unknown")
        for s in r.signals:
            assert set(s.values) <= set(SIGNALS)
            assert all(math.isfinite(v) for v in s.values.values())
            assert set(s.missing).isdisjoint(s.values)
