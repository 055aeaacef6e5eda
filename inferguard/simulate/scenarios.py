"""Fault scenarios: the load and the fault each one puts on the queueing model.

A scenario changes only inputs of the model (arrival rate, request sizes, limits, slowdowns); the
symptoms (KV usage, queueing, preemptions, latency) come out of the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from inferguard.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    arrival_rate: float  # background requests per second (Poisson)
    prompt_tokens: tuple[int, int]  # uniform range, inclusive
    output_tokens: tuple[int, int]
    max_num_seqs: int | None = None  # overrides the engine limit (admission_overload)
    prefill_slowdown: float = 1.0  # ttft_regression: prefill runs this many times slower
    prefix_hit_ratio: float = 0.6  # share of prompt tokens found in the prefix cache
    spec_accept_rate: float = 0.7  # speculative decoding: accepted / drafted
    swap: bool = False  # preempt by swapping to CPU blocks (vLLM V0) instead of recompute
    crash: bool = False  # the engine dies, stays down, restarts with fresh counters
    gpu_fault: bool = False  # XID errors and double-bit ECC errors on the GPU
    error_ratio: float = 0.0  # share of requests that finish with an error


HEALTHY = Scenario(
    "healthy", "steady light load; nothing wrong", arrival_rate=2.0, prompt_tokens=(200, 800), output_tokens=(50, 200)
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        HEALTHY,
        Scenario(
            "kv_pressure",
            "long prompts and outputs fill the KV cache; running requests are preempted (recompute)",
            arrival_rate=5.0, prompt_tokens=(500, 1500), output_tokens=(800, 1600),
        ),
        Scenario(
            "admission_overload",
            "more arrivals than batch slots (max_num_seqs=4): the queue grows while KV stays low",
            arrival_rate=8.0, prompt_tokens=(100, 300), output_tokens=(100, 200), max_num_seqs=4,
        ),
        replace(
            HEALTHY, name="prefix_thrash",
            summary="prompts stop sharing prefixes: the prefix-cache hit ratio collapses, prefill work rises",
            prefix_hit_ratio=0.02,
        ),
        Scenario(
            "swap",
            "KV exhaustion handled by swapping sequences to CPU blocks (vLLM V0 semantics)",
            arrival_rate=5.0, prompt_tokens=(500, 1500), output_tokens=(800, 1600), swap=True,
        ),
        replace(
            HEALTHY, name="engine_crash",
            summary="the engine dies (503 everywhere), stays down, restarts with counters from 0; repeats",
            crash=True,
        ),
        replace(
            HEALTHY, name="ttft_regression",
            summary="prefill runs 20x slower (a bad kernel, a throttled GPU): time to first token climbs",
            prefill_slowdown=20.0,
        ),
        replace(
            HEALTHY, name="spec_decode_collapse",
            summary="the draft model stops matching: speculative acceptance falls from 0.7 to 0.05",
            spec_accept_rate=0.05,
        ),
        replace(
            HEALTHY, name="gpu_fault",
            summary="XID 48 and double-bit ECC errors on the GPU (visible with --dialect dcgm); requests error",
            gpu_fault=True, error_ratio=0.3,
        ),
    )
}

SCENARIO_NAMES: tuple[str, ...] = tuple(SCENARIOS)


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; a ConfigError naming the valid ones otherwise."""
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        valid = ", ".join(SCENARIO_NAMES)
        raise ConfigError("scenario", f"unknown scenario {name!r}; expected one of {valid}") from None
