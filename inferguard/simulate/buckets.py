"""Histogram bucket bounds of the real engines, copied from their /metrics pages.

vLLM V1 bounds come from vllm-v1-2026-05-inferguard-lmcache-mp.prom, SGLang from
sglang-0.5.x-dynamo-worker-metrics-examples.prom (both in the shared fixtures); vLLM V0 (0.7) bounds are
the V0 ``metrics.py`` lists (the V0 capture is cut off before them, except ``iteration_tokens_total``).
The queueing model keeps one histogram per quantity over the *union* of every dialect's bounds, so each
dialect reads exact cumulative counts at its own bounds.
"""

from __future__ import annotations

TTFT_V1 = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
           20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_V1 = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
          80.0)
REQUEST_TIME_V1 = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                   240.0, 480.0, 960.0, 1920.0, 7680.0)
TOKENS_1_2_5 = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0)
ITERATION_TOKENS_V1 = (1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0)
PARAMS_N = (1.0, 2.0, 5.0, 10.0, 20.0)

TTFT_V0 = TTFT_V1[:16]  # V0 stopped at 10 s
TPOT_V0 = ITL_V1[:13]  # V0 stopped at 2.5 s
REQUEST_TIME_V0 = REQUEST_TIME_V1[:15]  # V0 stopped at 60 s
# V0 used the CUDA-graph capture sizes: 1, 2, 4, then multiples of 8 up to 512 (as in the V0 capture).
ITERATION_TOKENS_V0 = (1.0, 2.0, 4.0, *(8.0 * i for i in range(1, 65)))

TTFT_SGLANG = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0)
ITL_SGLANG = (0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.06, 0.08, 0.1, 0.2,
              0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0)
E2E_SGLANG = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0,
              400.0, 600.0, 1200.0, 1800.0, 2400.0)
QUEUE_SGLANG = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0,
                80.0, 90.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0, 1200.0,
                1400.0, 1600.0, 1800.0, 2000.0, 2500.0, 3000.0)
RETRACTIONS_SGLANG = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0,
                      75.0, 100.0)


def union(*bounds: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(sorted({b for group in bounds for b in group}))


# Quantity -> the bounds the model records at (every dialect's bounds for it are a subset).
MODEL_BOUNDS: dict[str, tuple[float, ...]] = {
    "ttft": union(TTFT_V1, TTFT_V0, TTFT_SGLANG),
    "itl": union(ITL_V1, TPOT_V0, ITL_SGLANG),
    "tpot": union(ITL_V1, TPOT_V0),
    "e2e": union(REQUEST_TIME_V1, REQUEST_TIME_V0, E2E_SGLANG),
    "queue": union(REQUEST_TIME_V1, REQUEST_TIME_V0, QUEUE_SGLANG),
    "inference": REQUEST_TIME_V1,
    "prefill": REQUEST_TIME_V1,
    "decode": REQUEST_TIME_V1,
    "prompt_len": TOKENS_1_2_5,
    "gen_len": TOKENS_1_2_5,
    "max_tokens": TOKENS_1_2_5,
    "params_n": PARAMS_N,
    "prefill_computed": TOKENS_1_2_5,
    "iteration_tokens": union(ITERATION_TOKENS_V1, ITERATION_TOKENS_V0),
    "retractions": RETRACTIONS_SGLANG,
}
