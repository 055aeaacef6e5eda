"""A small queueing model of one LLM serving engine: KV blocks, batch slots, prefill and decode time.

Time is injected: the model only moves when ``advance_to(t)`` is called, in fixed quanta aligned on
``start + k * quantum``, so the same seed and the same submissions give the same numbers however often
the caller advances (a scrape every second or one call at the end).

Each quantum: background arrivals (Poisson) join the waiting queue; swapped sequences come back when
blocks allow; waiting requests are admitted while batch slots and KV blocks allow (prefix-cache hits
save prefill work); the quantum's time goes first to prefill, then to decode steps whose length grows
with the batch; each running sequence grows by the tokens of those steps (more with speculative
decoding) and takes new KV blocks, and when none are free the newest sequence is preempted
(recompute, as vLLM V1 does; swapped to CPU blocks in the swap scenario, as V0 did).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field

from inferguard.errors import ConfigError
from inferguard.simulate.buckets import MODEL_BOUNDS
from inferguard.simulate.scenarios import Scenario

FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")


class EngineDownError(Exception):
    """The simulated engine is down (engine_crash): callers answer 503. Internal to the simulator."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Engine limits and speeds. Defaults: a mid-size model on one GPU, 16-token blocks."""

    block_size: int = 16
    num_gpu_blocks: int = 4096  # 65,536 tokens of KV
    num_cpu_blocks: int = 2048  # swap space (V0)
    max_num_seqs: int = 64
    max_model_len: int = 8192
    prefill_s_per_token: float = 2.5e-5
    decode_base_s: float = 0.012  # one decode step with a batch of 1
    decode_per_seq_s: float = 0.0004  # added per sequence in the batch
    spec_tokens: int = 3  # speculative tokens drafted per step (0 = no speculative decoding)
    quantum_s: float = 0.05  # model granularity; larger is cheaper (1,000 targets), coarser timing
    crash_down_s: float = 20.0  # engine_crash: how long the engine stays down
    crash_up_s: float = 60.0  # engine_crash: how long it runs before dying again
    watermark: float = 0.01  # share of blocks kept free when admitting (vLLM's watermark)
    client_timeout_s: float = 30.0  # background clients abort requests still queued after this

    def __post_init__(self) -> None:
        for name in ("block_size", "num_gpu_blocks", "max_num_seqs", "max_model_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"simulate.{name}", "must be at least 1")
        for name in ("prefill_s_per_token", "decode_base_s", "quantum_s", "crash_down_s", "crash_up_s",
                     "client_timeout_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"simulate.{name}", f"must be a positive number, got {value!r}")
        if self.num_cpu_blocks < 0 or self.spec_tokens < 0 or self.decode_per_seq_s < 0:
            raise ConfigError("simulate", "num_cpu_blocks, spec_tokens and decode_per_seq_s must be >= 0")


class Histogram:
    """Non-cumulative bucket counts over fixed bounds; bulk observations (``n``) keep it cheap."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # last slot is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, n: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += n  # le semantics: value <= bound
        self.sum += value * n
        self.count += n

    def cumulative(self, bounds: tuple[float, ...]) -> list[int]:
        """Cumulative counts at ``bounds`` (a subset of this histogram's bounds), then +Inf."""
        out: list[int] = []
        running = 0
        i = 0
        for b in bounds:
            while i < len(self.bounds) and self.bounds[i] <= b:
                running += self.counts[i]
                i += 1
            out.append(running)
        out.append(self.count)
        return out


class Stats:
    """Everything cumulative an engine exports. Replaced wholesale when the engine restarts."""

    def __init__(self, created: float) -> None:
        self.created = created
        self.prompt_tokens = 0
        self.prompt_tokens_cached = 0
        self.prompt_tokens_recomputed = 0
        self.generation_tokens = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.preemptions = 0
        self.swapped_out = 0
        self.retracted_last = 0  # SGLang's gauge: requests retracted by the last batch
        self.spec_drafts = 0
        self.spec_draft_tokens = 0
        self.spec_accepted = 0
        self.requests_started = 0
        self.finished: dict[str, int] = dict.fromkeys(FINISH_REASONS, 0)
        self.h: dict[str, Histogram] = {name: Histogram(b) for name, b in MODEL_BOUNDS.items()}


@dataclass(slots=True, eq=False)
class SimRequest:
    rid: int
    prompt_tokens: int
    max_tokens: int
    arrival: float
    external: bool = False
    generated: int = 0
    blocks: int = 0
    computed: bool = False  # prefill done for the current residency
    first_scheduled: float | None = None
    first_token: float | None = None
    prefill_end: float | None = None
    finished: float | None = None
    finish_reason: str | None = None
    preemptions: int = 0
    stop_early: bool = False  # background requests that end on a stop token
    token_times: list[float] = field(default_factory=list)  # external only: when tokens appeared

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


class EngineModel:
    def __init__(self, config: EngineConfig, scenario: Scenario, *, seed: int, start: float) -> None:
        self.config = config
        self.scenario = scenario
        self.rng = random.Random(seed)
        self.start = start
        self.now = start  # end of the last processed quantum
        self._k = 0  # quanta processed since start
        self.stats = Stats(created=start)
        self.up = True
        self.restarts = 0
        self.waiting: deque[SimRequest] = deque()
        self.running: list[SimRequest] = []
        self.swapped: deque[SimRequest] = deque()
        self.used_blocks = 0
        self.cpu_used_blocks = 0
        self._carry = 0.0  # unspent (>0) or overspent (<0) engine time
        self._spec_frac = 0.0
        self._next_rid = 0
        self._next_arrival = math.inf
        self._crash_at = math.inf
        self._restart_at = math.inf
        self.last_step_s = 0.0
        self.last_gen_tokens_per_s = 0.0
        self.busy_ratio = 0.0  # share of the last quantum the engine was busy (GPU utilisation)
        self.xid = 0
        self.gpu_energy_mj = 0.0
        self.gpu_ecc_dbe = 0
        self._retracted_at = -math.inf
        self._recent_queries = 0.0
        self._recent_hits = 0.0
        self._schedule_arrivals(start)
        if scenario.crash:
            self._crash(start)

    # -- inputs -------------------------------------------------------------------------------------

    @property
    def max_num_seqs(self) -> int:
        return self.scenario.max_num_seqs or self.config.max_num_seqs

    def set_scenario(self, scenario: Scenario) -> None:
        """Switch at the model's current time; the next quantum runs under the new scenario."""
        self.scenario = scenario
        self._schedule_arrivals(self.now)
        self._crash_at = math.inf
        self.xid = 0
        if scenario.crash and self.up:
            self._crash(self.now)  # dies at once, so the very next scrape fails
        elif not scenario.crash and not self.up:
            self._restart_at = self.now  # leaving engine_crash: back up on the next quantum

    def submit(self, prompt_tokens: int, max_tokens: int, now: float | None = None) -> SimRequest:
        """Queue a real (HTTP) request. It is scheduled from the next quantum on."""
        if not self.up:
            raise EngineDownError("engine is down")
        prompt_tokens = max(1, min(prompt_tokens, self.config.max_model_len - 1))
        max_tokens = max(1, min(max_tokens, self.config.max_model_len - prompt_tokens))
        req = self._new_request(prompt_tokens, max_tokens, self.now if now is None else now, external=True)
        self.waiting.append(req)
        return req

    # -- gauges -------------------------------------------------------------------------------------

    @property
    def kv_usage(self) -> float:
        return self.used_blocks / self.config.num_gpu_blocks

    @property
    def cpu_kv_usage(self) -> float:
        return self.cpu_used_blocks / self.config.num_cpu_blocks if self.config.num_cpu_blocks else 0.0

    @property
    def recent_hit_rate(self) -> float | None:
        """Prefix-cache hit rate over roughly the last 30 s; None before any query."""
        return self._recent_hits / self._recent_queries if self._recent_queries > 1e-9 else None

    def state(self) -> dict[str, object]:
        return {
            "scenario": self.scenario.name, "up": self.up, "now": self.now, "restarts": self.restarts,
            "running": len(self.running), "waiting": len(self.waiting), "swapped": len(self.swapped),
            "kv_usage": round(self.kv_usage, 4), "preemptions": self.stats.preemptions,
            "finished": sum(self.stats.finished.values()), "max_num_seqs": self.max_num_seqs,
        }

    # -- time ---------------------------------------------------------------------------------------

    def advance_to(self, t: float, max_quanta: int | None = None) -> None:
        """Process every whole quantum that ends at or before ``t``.

        ``max_quanta`` bounds the work of one call; a caller that fell far behind (a target nobody
        scraped for an hour) skips the rest with ``skip_to`` instead of simulating it.
        """
        q = self.config.quantum_s
        done = 0
        # quanta are counted, not summed, so the grid start + k * q never drifts
        while self.start + (self._k + 1) * q <= t + 1e-9:
            if max_quanta is not None and done >= max_quanta:
                self.skip_to(t)
                return
            t0 = self.start + self._k * q
            self._quantum(t0, t0 + q)
            self._k += 1
            self.now = self.start + self._k * q
            done += 1

    def skip_to(self, t: float) -> None:
        """Jump the clock forward without simulating (state frozen, arrivals rescheduled)."""
        q = self.config.quantum_s
        k = math.floor((t - self.start) / q + 1e-9)
        if k > self._k:
            self._k = k
            self.now = self.start + k * q
            self._schedule_arrivals(self.now)
            if self._crash_at < self.now:
                self._crash_at = self.now
            if self._restart_at < self.now:
                self._restart_at = self.now

    # -- internals ----------------------------------------------------------------------------------

    def _schedule_arrivals(self, t: float) -> None:
        rate = self.scenario.arrival_rate
        self._next_arrival = t + self.rng.expovariate(rate) if rate > 0 else math.inf

    def _new_request(self, prompt: int, max_tokens: int, arrival: float, external: bool) -> SimRequest:
        self._next_rid += 1
        return SimRequest(self._next_rid, prompt, max_tokens, arrival, external=external)

    def _blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.config.block_size)

    def _quantum(self, t0: float, t1: float) -> None:
        sc = self.scenario
        if not self.up:
            if t0 >= self._restart_at:
                self._restart(t0)
            else:
                self.busy_ratio = 0.0
                return
        if t0 >= self._crash_at:
            self._crash(t0)
            return
        rng = self.rng
        st = self.stats
        preempted_before = st.preemptions
        # 1. background arrivals
        while self._next_arrival <= t0:  # arrived before this quantum: can be scheduled in it
            lo, hi = sc.prompt_tokens
            olo, ohi = sc.output_tokens
            req = self._new_request(rng.randint(lo, hi), rng.randint(olo, ohi), self._next_arrival, external=False)
            req.stop_early = rng.random() < 0.7
            self.waiting.append(req)
            self._next_arrival += rng.expovariate(sc.arrival_rate)
        # clients give up on requests queued too long (bounds the queue in overload scenarios)
        if self.waiting and int(t0) != int(t0 - (t1 - t0)):
            self._abort_stale(t0)
        q = t1 - t0
        budget = self._carry + q
        prefill_tokens = 0
        q_tokens = h_tokens = 0
        admitted: list[SimRequest] = []
        total = self.config.num_gpu_blocks
        reserve = int(total * self.config.watermark)
        # 2. swap back in, oldest first, before admitting new work (V0 order)
        while self.swapped and len(self.running) < self.max_num_seqs:
            req = self.swapped[0]
            if self.used_blocks + req.blocks > total - reserve:
                break
            self.swapped.popleft()
            self.cpu_used_blocks -= req.blocks
            self.used_blocks += req.blocks
            self.running.append(req)
        # 3. admission: only when the engine is not already behind
        if budget > 0 and not self.swapped:
            while self.waiting and len(self.running) < self.max_num_seqs:
                req = self.waiting[0]
                tokens = req.prompt_tokens + req.generated
                need = self._blocks_for(tokens + 1)
                if self.used_blocks + need > total - reserve:
                    break
                self.waiting.popleft()
                self.used_blocks += need
                req.blocks = need
                if req.first_scheduled is None:
                    req.first_scheduled = t0
                    st.requests_started += 1
                    st.h["queue"].observe(t0 - req.arrival)
                    hit = 0
                    if req.prompt_tokens > self.config.block_size:
                        # hits are whole blocks, and the last token is always computed
                        hit = int(req.prompt_tokens * sc.prefix_hit_ratio) // self.config.block_size
                        hit = min(hit * self.config.block_size, req.prompt_tokens - 1)
                    st.prefix_queries += req.prompt_tokens
                    st.prefix_hits += hit
                    q_tokens += req.prompt_tokens
                    h_tokens += hit
                    st.prompt_tokens += req.prompt_tokens
                    st.prompt_tokens_cached += hit
                    computed = req.prompt_tokens - hit
                    st.h["prefill_computed"].observe(computed)
                else:  # resumed after a recompute preemption: prompt and output are computed again
                    computed = tokens
                    st.prompt_tokens_recomputed += tokens
                prefill_tokens += computed
                admitted.append(req)
                self.running.append(req)
        # a recent hit rate (30 s decay) for the engines that export a rate gauge (V0, SGLang)
        decay = math.exp(-q / 30.0)
        self._recent_queries = self._recent_queries * decay + q_tokens
        self._recent_hits = self._recent_hits * decay + h_tokens
        prefill_s = prefill_tokens * self.config.prefill_s_per_token * sc.prefill_slowdown
        start_decode = t0 + max(0.0, -self._carry) + prefill_s
        budget -= prefill_s
        if prefill_tokens:
            st.h["iteration_tokens"].observe(prefill_tokens)
        batch = len(self.running)
        step = self.config.decode_base_s + self.config.decode_per_seq_s * batch
        self.last_step_s = step
        # first tokens: prefill produces one token per admitted request
        for req in admitted:
            req.computed = True
            if req.first_token is None:
                req.first_token = start_decode
                req.prefill_end = req.first_token
                st.h["ttft"].observe(req.first_token - req.arrival)
                st.h["prefill"].observe(req.first_token - (req.first_scheduled or t0))
                req.generated = 1
                st.generation_tokens += 1
                if req.external:
                    req.token_times.append(req.first_token)
        # 4. decode steps for the whole batch
        steps = int(budget // step) if budget > 0 and batch else 0
        self._carry = budget - steps * step if batch else min(budget, 0.0)
        self._carry = max(self._carry, -60.0)  # a bounded backlog: never owe more than a minute
        gen_this_q = 0
        if steps and batch:
            k = self.config.spec_tokens
            accepted_per_req = 0
            if k:
                exact = steps * k * sc.spec_accept_rate + self._spec_frac
                accepted_per_req = int(exact)
                self._spec_frac = exact - accepted_per_req
                st.spec_drafts += steps * batch
                st.spec_draft_tokens += steps * k * batch
                st.spec_accepted += accepted_per_req * batch
            gain = steps + accepted_per_req
            st.h["iteration_tokens"].observe(batch * (1 + k * sc.spec_accept_rate), steps)
            i = 0
            while i < len(self.running):
                req = self.running[i]
                g = min(gain, req.max_tokens - req.generated)
                if g <= 0:
                    i += 1
                    continue
                need = self._blocks_for(req.prompt_tokens + req.generated + g) - req.blocks
                preempted_self = False
                while need > 0 and self.used_blocks + need > total:
                    victim = self.running[-1]  # the newest sequence loses its blocks first
                    self._preempt(victim)
                    if victim is req:
                        preempted_self = True
                        break
                if preempted_self:
                    continue  # req was last in the batch, so the loop ends here
                if need > 0:
                    self.used_blocks += need
                    req.blocks += need
                req.generated += g
                gen_this_q += g
                st.h["itl"].observe(step, min(steps, g))
                if req.external:
                    base = req.token_times[-1] if req.token_times else start_decode
                    per = step * steps / g
                    req.token_times.extend(base + per * (j + 1) for j in range(g))
                i += 1
            st.generation_tokens += gen_this_q
        self.busy_ratio = min(1.0, (prefill_s + steps * step) / q) if (batch or prefill_s) else 0.0
        self.last_gen_tokens_per_s = gen_this_q / q
        # 5. finish
        still: list[SimRequest] = []
        for req in self.running:
            limit = req.max_tokens
            if req.generated >= limit:
                reason = "length"
                if not req.external and req.stop_early:
                    reason = "stop"
                if sc.error_ratio and rng.random() < sc.error_ratio:
                    reason = "error"
                self._finish(req, t1, reason)
            else:
                still.append(req)
        self.running = still
        # SGLang's num_retracted_reqs is set per batch; hold it for a second so a scrape can see it
        if st.preemptions != preempted_before:
            st.retracted_last = st.preemptions - preempted_before
            self._retracted_at = t0
        elif t0 - self._retracted_at > 1.0:
            st.retracted_last = 0
        # 6. GPU side (DCGM): energy from busy time; ECC double-bit errors under gpu_fault.
        # These belong to the GPU, not the engine process, so an engine restart does not reset them.
        self.gpu_energy_mj += (80.0 + 270.0 * self.busy_ratio) * q * 1000.0
        if sc.gpu_fault:
            self.xid = 48  # double-bit ECC error
            if rng.random() < 0.5 * q:
                self.gpu_ecc_dbe += 1

    def _abort_stale(self, now: float) -> None:
        limit = self.config.client_timeout_s
        keep: deque[SimRequest] = deque()
        for req in self.waiting:
            if not req.external and req.first_scheduled is None and now - req.arrival > limit:
                req.finished = now
                req.finish_reason = "abort"
                self.stats.finished["abort"] += 1
            else:
                keep.append(req)
        self.waiting = keep

    def _preempt(self, req: SimRequest) -> None:
        st = self.stats
        self.running.remove(req)
        req.preemptions += 1
        st.preemptions += 1
        cpu_free = self.config.num_cpu_blocks - self.cpu_used_blocks
        if self.scenario.swap and req.blocks <= cpu_free:
            self.used_blocks -= req.blocks
            self.cpu_used_blocks += req.blocks
            st.swapped_out += 1
            self.swapped.append(req)
            return
        self.used_blocks -= req.blocks
        req.blocks = 0
        req.computed = False
        self.waiting.appendleft(req)  # recompute: back to the head of the queue

    def _finish(self, req: SimRequest, now: float, reason: str) -> None:
        st = self.stats
        req.finished = now
        req.finish_reason = reason
        self.used_blocks -= req.blocks
        req.blocks = 0
        st.finished[reason] += 1
        h = st.h
        h["e2e"].observe(now - req.arrival)
        h["inference"].observe(now - (req.first_scheduled or now))
        h["decode"].observe(now - (req.prefill_end or now))
        if req.generated > 1:
            h["tpot"].observe((now - (req.first_token or now)) / (req.generated - 1))
        h["prompt_len"].observe(req.prompt_tokens)
        h["gen_len"].observe(req.generated)
        h["max_tokens"].observe(req.max_tokens)
        h["params_n"].observe(1)
        h["retractions"].observe(req.preemptions)

    def _crash(self, now: float) -> None:
        """Everything in flight dies with the engine; it comes back after ``crash_down_s``."""
        for req in [*self.running, *self.waiting, *self.swapped]:
            req.finished = now
            req.finish_reason = "abort"
        self.running = []
        self.waiting.clear()
        self.swapped.clear()
        self.used_blocks = 0
        self.cpu_used_blocks = 0
        self._carry = 0.0
        self.up = False
        self.busy_ratio = 0.0
        self._crash_at = math.inf
        self._restart_at = now + self.config.crash_down_s

    def _restart(self, now: float) -> None:
        self.up = True
        self.restarts += 1
        self.stats = Stats(created=now)  # counters from 0, new _created timestamps
        self._recent_queries = self._recent_hits = 0.0
        self._restart_at = math.inf
        self._schedule_arrivals(now)
        if self.scenario.crash:
            self._crash_at = now + self.config.crash_up_s
