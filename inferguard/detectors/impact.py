"""Is someone being hurt right now? The shared test behind every "critical" of a saturation detector.

Critical pages a person, so it needs present user impact, not only a busy engine: requests waiting to be
scheduled, or time to first token / inter-token latency past the limit their regression detectors use.
A KV cache near full that preempts now and then with nobody waiting is an expensive GPU used well.
"""

from __future__ import annotations

from inferguard.detectors.config import DetectorConfig
from inferguard.detectors.window import Window, ev
from inferguard.models import Evidence


def user_impact(w: Window, cfg: DetectorConfig) -> tuple[Evidence, ...]:
    """Evidence of present user impact (empty when there is none or it cannot be seen)."""
    out: list[Evidence] = []
    waiting = w.latest("requests_waiting")
    if waiting is not None and waiting >= cfg.queue_threshold:
        out.append(ev("requests_waiting", waiting, cfg.queue_threshold, ">=", "requests queue"))
    qt = w.latest("queue_time_p95_s")
    if qt is not None and qt >= cfg.queue_time_s:
        out.append(ev("queue_time_p95_s", qt, cfg.queue_time_s, ">=", "requests wait to be scheduled"))
    if not w.warming_up:
        for signal, mult, floor in (("ttft_p95_s", cfg.ttft_multiplier, cfg.ttft_min_s),
                                    ("itl_p95_s", cfg.itl_multiplier, cfg.itl_min_s)):
            value, base = w.latest(signal), w.baselines.get(signal)
            if value is not None and base is not None and value > max(base * mult, floor):
                out.append(ev(signal, value, max(base * mult, floor), ">", "latency past its regression limit"))
    return tuple(out)


def recomputed_share(w: Window) -> float | None:
    """Preemptions per finished request in the latest interval: the share of work being done twice.

    vLLM V1 preempts by recompute: a preempted request's prefill and generated tokens are thrown away
    and redone. At one preemption per two finished requests, half the requests run (at least) twice.
    The present interval, not the trend window: whether the storm is sustained is the window's question
    (``preemption_storm`` asks it), how much work is being thrown away *now* is this one, and a window
    reaching back into healthy traffic would dilute it. None when either rate is unknown.
    """
    preempt = w.latest("preemptions_per_s")
    finished = w.latest("requests_finished_per_s")
    if preempt is None or finished is None:
        return None
    if finished <= 0:
        return float("inf") if preempt > 0 else 0.0
    return preempt / finished
