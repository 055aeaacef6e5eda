"""The simulator's queueing model: deterministic, and each scenario produces its own symptoms."""

from __future__ import annotations

from itertools import pairwise

import pytest

from inferguard.errors import ConfigError
from inferguard.simulate.buckets import MODEL_BOUNDS, TTFT_SGLANG, TTFT_V1
from inferguard.simulate.model import EngineConfig, EngineDownError, EngineModel, Histogram
from inferguard.simulate.scenarios import SCENARIO_NAMES, get_scenario

T0 = 1_700_000_000.0


def run(scenario: str, seconds: int, *, seed: int = 7, every: float = 5.0,
        config: EngineConfig | None = None) -> tuple[EngineModel, list[dict[str, float]]]:
    """Advance a fresh model, sampling its gauges the way a scraper would (every ``every`` s)."""
    m = EngineModel(config or EngineConfig(), get_scenario(scenario), seed=seed, start=T0)
    samples = []
    for k in range(1, round(seconds / every) + 1):
        t = k * every
        m.advance_to(T0 + t)
        samples.append({"t": t, "kv": m.kv_usage, "waiting": len(m.waiting), "running": len(m.running),
                        "swapped": len(m.swapped), "preemptions": m.stats.preemptions})
    return m, samples


def test_same_seed_same_numbers_however_often_it_is_advanced() -> None:
    a, _ = run("kv_pressure", 60, every=0.05)
    b, _ = run("kv_pressure", 60, every=7.5)
    assert a.now == b.now == T0 + 60
    assert (a.stats.preemptions, a.stats.generation_tokens, a.stats.h["ttft"].counts) == (
        b.stats.preemptions, b.stats.generation_tokens, b.stats.h["ttft"].counts)
    c, _ = run("kv_pressure", 60, seed=8)
    assert c.stats.generation_tokens != a.stats.generation_tokens


def test_healthy_keeps_the_queue_empty_and_kv_low() -> None:
    m, samples = run("healthy", 120)
    assert max(s["waiting"] for s in samples) <= 2
    assert max(s["kv"] for s in samples) < 0.2
    assert m.stats.preemptions == 0
    assert sum(m.stats.finished.values()) > 150  # ~2 requests/s really flowed
    assert m.stats.h["ttft"].sum / m.stats.h["ttft"].count < 0.1


def test_kv_pressure_fills_kv_and_preempts() -> None:
    m, samples = run("kv_pressure", 120)
    late = samples[len(samples) // 2:]
    assert min(s["kv"] for s in late) > 0.9
    rates = [(b["preemptions"] - a["preemptions"]) / 5.0 for a, b in pairwise(late)]
    assert sum(rates) / len(rates) > 0.5  # above the preemption detector's 0.5/s default
    assert m.stats.prompt_tokens_recomputed > 0  # recompute, not swap, in V1 semantics
    assert not m.swapped


def test_admission_overload_grows_the_queue_without_kv_pressure() -> None:
    m, samples = run("admission_overload", 60)
    waiting = [s["waiting"] for s in samples]
    assert waiting[-1] > 50 and waiting[-1] > waiting[2]
    assert max(s["running"] for s in samples) <= 4
    assert max(s["kv"] for s in samples) < 0.1
    assert m.stats.preemptions == 0


def test_clients_abort_requests_queued_too_long() -> None:
    m, samples = run("admission_overload", 180)
    assert m.stats.finished["abort"] > 0
    assert samples[-1]["waiting"] < 8.0 * 40  # bounded near arrival rate x client timeout


def test_swap_moves_sequences_to_cpu_blocks() -> None:
    m = EngineModel(EngineConfig(), get_scenario("swap"), seed=3, start=T0)
    seen_swapped = seen_cpu = 0.0
    for k in range(1, 121):
        m.advance_to(T0 + k)
        seen_swapped = max(seen_swapped, len(m.swapped))
        seen_cpu = max(seen_cpu, m.cpu_kv_usage)
    assert m.stats.swapped_out > 0 and seen_swapped > 0 and seen_cpu > 0


def hit_rate(scenario: str) -> float:
    m, _ = run(scenario, 60)
    rate = m.recent_hit_rate
    assert rate is not None
    return rate


def test_prefix_thrash_collapses_the_hit_rate() -> None:
    healthy, thrash = hit_rate("healthy"), hit_rate("prefix_thrash")
    assert healthy > 0.5
    assert thrash < 0.1


def mean_ttft(scenario: str) -> float:
    m, _ = run(scenario, 90)
    h = m.stats.h["ttft"]
    return h.sum / h.count


def test_ttft_regression_slows_time_to_first_token() -> None:
    assert mean_ttft("ttft_regression") > 3 * mean_ttft("healthy")


def test_spec_decode_collapse_drops_acceptance() -> None:
    healthy, _ = run("healthy", 60)
    collapsed, _ = run("spec_decode_collapse", 60)
    ratio = healthy.stats.spec_accepted / healthy.stats.spec_draft_tokens
    assert ratio == pytest.approx(0.7, abs=0.02)
    assert collapsed.stats.spec_accepted / collapsed.stats.spec_draft_tokens < 0.1


def test_engine_crash_goes_down_then_restarts_with_fresh_counters() -> None:
    cfg = EngineConfig(crash_down_s=10.0, crash_up_s=30.0)
    m = EngineModel(cfg, get_scenario("healthy"), seed=1, start=T0)
    m.advance_to(T0 + 30)
    before = m.stats.generation_tokens
    assert before > 0
    m.set_scenario(get_scenario("engine_crash"))
    assert not m.up
    with pytest.raises(EngineDownError):
        m.submit(10, 10)
    m.advance_to(T0 + 39)
    assert not m.up
    m.advance_to(T0 + 41)
    assert m.up and m.restarts == 1
    assert m.stats.created == pytest.approx(T0 + 40)
    assert m.stats.generation_tokens < before  # counters started again from 0
    m.advance_to(T0 + 71)  # up for crash_up_s, then down again
    assert not m.up
    m.set_scenario(get_scenario("healthy"))
    m.advance_to(T0 + 72)
    assert m.up and m.restarts == 2


def test_gpu_fault_sets_xid_counts_ecc_and_fails_requests() -> None:
    m, _ = run("gpu_fault", 120)
    assert m.xid == 48
    assert m.gpu_ecc_dbe > 0
    assert m.stats.finished["error"] > 0
    healthy, _ = run("healthy", 120)
    assert healthy.xid == 0 and healthy.gpu_ecc_dbe == 0 and healthy.stats.finished["error"] == 0


def test_a_submitted_request_gets_its_tokens_in_time_order() -> None:
    m = EngineModel(EngineConfig(), get_scenario("healthy"), seed=2, start=T0)
    req = m.submit(prompt_tokens=100, max_tokens=40, now=T0)
    m.advance_to(T0 + 5)
    assert req.finish_reason == "length" and req.generated == 40
    assert len(req.token_times) == 40
    assert req.token_times == sorted(req.token_times)
    assert T0 <= req.token_times[0] < req.token_times[-1] <= T0 + 5


def test_submit_clamps_to_the_model_length() -> None:
    m = EngineModel(EngineConfig(max_model_len=256), get_scenario("healthy"), seed=2, start=T0)
    req = m.submit(prompt_tokens=10_000, max_tokens=10_000)
    assert req.prompt_tokens + req.max_tokens <= 256


def test_far_behind_models_skip_instead_of_simulating_forever() -> None:
    m = EngineModel(EngineConfig(), get_scenario("healthy"), seed=2, start=T0)
    m.advance_to(T0 + 86_400, max_quanta=100)
    assert m.now == pytest.approx(T0 + 86_400)
    m.advance_to(T0 + 86_410)
    assert m.up


@pytest.mark.parametrize(("field", "value"), [("block_size", 0), ("num_gpu_blocks", -1), ("quantum_s", 0.0),
                                             ("decode_base_s", float("nan")), ("spec_tokens", -1)])
def test_bad_engine_config_is_a_config_error(field: str, value: float) -> None:
    with pytest.raises(ConfigError) as err:
        EngineConfig(**{field: value})  # type: ignore[arg-type]
    assert "simulate" in err.value.setting


def test_unknown_scenario_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="kv_pressure"):
        get_scenario("kv-pressure")
    assert "healthy" in SCENARIO_NAMES and len(SCENARIO_NAMES) == 9


def test_histogram_reads_exact_counts_at_every_dialects_bounds() -> None:
    h = Histogram(MODEL_BOUNDS["ttft"])
    for v, n in ((0.001, 2), (0.05, 3), (0.15, 1), (1.0, 4), (3000.0, 1)):
        h.observe(v, n)
    v1 = dict(zip([*TTFT_V1, float("inf")], h.cumulative(TTFT_V1), strict=True))
    assert (v1[0.001], v1[0.06], v1[0.25], v1[1.0], v1[2560.0], v1[float("inf")]) == (2, 5, 6, 10, 10, 11)
    sg = dict(zip([*TTFT_SGLANG, float("inf")], h.cumulative(TTFT_SGLANG), strict=True))
    assert (sg[0.1], sg[0.2], sg[1.0], sg[400.0]) == (5, 6, 10, 10)
    assert h.count == 11 and h.sum == pytest.approx(0.002 + 0.15 + 0.15 + 4.0 + 3000.0)
