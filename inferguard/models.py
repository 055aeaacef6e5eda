"""Value types shared by every stage. Stages import this module and ``errors``; never each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from inferguard.urls import split_credentials

Severity = Literal["warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"ok": 0, "warning": 1, "critical": 2}

# Typed reasons a scrape can fail with (issue #2: never a bare "error").
SCRAPE_REASONS = (
    "timeout",
    "refused",
    "http_status",
    "too_large",
    "not_metrics",
    "bad_encoding",
    "connect",
)


def describe_scrape_failure(reason: str, status: int | None = None, url: str = "", detail: str = "") -> str:
    """What an operator needs to hear about a failed scrape: what happened, where, and what to check."""
    path = _path_of(url)
    if reason == "http_status":
        hint = {401: " (authentication required: set bearer_token or bearer_token_env in the targets file)",
                403: " (forbidden: check the bearer token)",
                404: " (nothing served there: is this the engine's metrics path?)"}.get(status or 0, "")
        return f"HTTP {status if status is not None else '?'} at {path}{hint}"
    if reason == "not_metrics":
        what = detail or "a page that is not Prometheus metrics"
        return f"{what} at {path}, not metrics (is this the engine's /metrics URL?)"
    return {
        "timeout": f"no answer from {_host_of(url)} before the scrape timeout",
        "refused": f"connection refused at {_host_of(url)}: nothing listens there (engine down or wrong port?)",
        "connect": f"cannot connect to {_host_of(url)}" + (f": {detail}" if detail else ""),
        "too_large": f"the page at {path} is larger than INFERGUARD_SCRAPE_MAX_BODY_BYTES",
        "bad_encoding": f"the page at {path} is not valid UTF-8 (or its gzip is corrupt)",
    }.get(reason, f"{reason} at {path}" + (f": {detail}" if detail else ""))


def _path_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    path = rest[rest.find("/"):] if "/" in rest else "/"
    return path.split("?", 1)[0] or "/"


def _host_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    host = rest.split("/", 1)[0]
    return host.rsplit("@", 1)[-1] or "the target"  # never echo userinfo: it may hold a password

# Engines as identified from the metric names present, never from HELP text or a guess.
ENGINES = ("vllm-v1", "vllm-v0", "sglang", "dcgm", "unknown")
# What a target's ``engine`` setting may say (equal to inferguard.normalise.ENGINE_HINTS; a test checks).
ENGINE_HINTS = ("auto", "vllm-v1", "vllm-v0", "sglang", "dcgm")

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


@dataclass(frozen=True, slots=True)
class Target:
    """One thing to scrape. ``labels`` are the operator's own (cluster, region, ...).

    ``url`` names the target everywhere and never carries a credential; ``request_url`` is the URL
    with its credentials (user info, secret query parameters), read only by the scraper (see
    inferguard/urls.py). Build targets with :meth:`from_url` to split them.
    """

    url: str
    name: str = ""
    engine_hint: str | None = None
    interval_s: float | None = None
    timeout_s: float | None = None
    bearer_token: str | None = field(default=None, repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    request_url: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Target:
        safe, full = split_credentials(url)
        return cls(url=safe, request_url=full, **kwargs)

    @property
    def display(self) -> str:
        return self.name or self.url


@dataclass(frozen=True, slots=True)
class Scrape:
    """The outcome of one scrape: a body, or a typed failure ``error`` (one of SCRAPE_REASONS)."""

    target: str
    ts: float
    status: int | None = None
    body: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    detail: str = ""  # what was seen, for the operator ("an HTML page"); never recorded, never a label

    @property
    def ok(self) -> bool:
        return self.error is None and self.body is not None


@dataclass(frozen=True, slots=True)
class Signals:
    """Canonical signals for one target and model at one instant.

    ``values`` holds only what is known: a signal that is absent is unknown, never 0.
    ``restarted`` is set when a counter went backwards (the engine restarted since the last scrape).
    """

    target: str
    ts: float
    engine: str
    model: str
    values: Mapping[str, float]
    restarted: bool = False
    missing: tuple[str, ...] = ()

    def get(self, name: str) -> float | None:
        return self.values.get(name)


@dataclass(frozen=True, slots=True)
class Evidence:
    signal: str
    value: float | None
    threshold: float | None = None
    op: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "value": self.value, "threshold": self.threshold,
                "op": self.op, "note": self.note}


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's verdict on one anomaly for one target/model at one instant (after persistence)."""

    code: str
    target: str
    model: str
    severity: Severity
    ts: float
    summary: str
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "summary": self.summary,
                "since": self.ts, "evidence": [e.to_dict() for e in self.evidence]}


# Canonical signal names. Normalisers emit only these; detectors and the brain read only these.
# Rates are per second over the window between two scrapes; quantiles come from histogram bucket
# deltas over that window (never lifetime _sum/_count). Absent from Signals.values == unknown.
SIGNALS: dict[str, str] = {
    "kv_usage": "KV-cache usage, 0-1 (max over ranks of one pool, never a sum)",
    "requests_running": "requests in the running batch",
    "requests_waiting": "requests queued, not yet scheduled",
    "requests_swapped": "requests swapped to CPU (vLLM V0)",
    "preemptions_per_s": "preemptions per second",
    "retractions_per_s": "SGLang retracted requests per second",
    "prompt_tokens_per_s": "prefill tokens per second",
    "generation_tokens_per_s": "decode tokens per second",
    "prefix_cache_hit_ratio": "prefix-cache hits / queries over the window (or the engine's own gauge)",
    "prefix_cache_queries_per_s": "prefix-cache queried tokens per second",
    "ttft_p50_s": "time to first token p50, seconds",
    "ttft_p95_s": "time to first token p95, seconds",
    "ttft_p99_s": "time to first token p99, seconds",
    "itl_p50_s": "inter-token latency p50, seconds",
    "itl_p95_s": "inter-token latency p95, seconds",
    "itl_p99_s": "inter-token latency p99, seconds",
    "e2e_p50_s": "end-to-end request latency p50, seconds",
    "e2e_p95_s": "end-to-end request latency p95, seconds",
    "e2e_p99_s": "end-to-end request latency p99, seconds",
    "queue_time_p50_s": "time queued p50, seconds",
    "queue_time_p95_s": "time queued p95, seconds",
    "queue_time_p99_s": "time queued p99, seconds",
    "prompt_len_p50": "prompt length p50 over the window, tokens",
    "prompt_len_p99": "prompt length p99 over the window, tokens",
    "requests_finished_per_s": "finished requests per second, all reasons",
    "requests_error_per_s": "requests finished with an error per second",
    "requests_abort_per_s": "requests aborted per second",
    "error_ratio": "errored / finished requests over the window",
    "spec_accept_ratio": "speculative decoding accepted / drafted tokens over the window",
    "gpu_xid_error": "last XID error code (0 = none)",
    "gpu_ecc_dbe_per_s": "double-bit ECC errors per second",
    "gpu_temp_c": "GPU temperature, Celsius",
    "gpu_power_w": "GPU power draw, watts",
    "gpu_throttle_reasons": "clock throttle reasons bitmask (0 = none)",
    "gpu_fb_used_ratio": "framebuffer used / (used + free)",
    "gpu_util": "GPU utilisation, 0-1",
}


# One parsed label set. Parsers may share one dict between samples with identical label text:
# treat it as read-only.
Labels = dict[str, str]


@dataclass(slots=True)
class Exposition:
    """A parsed Prometheus text page, reduced to the sample names the normalisers asked for.

    ``samples`` maps a *sample* name (``vllm:ttft_seconds_bucket``, ``vllm:num_requests_running``)
    to its ``(labels, value)`` pairs in page order. ``types`` maps a *family* name to its TYPE.
    ``sample_lines`` counts every sample line on the page, kept or not. ``dropped`` counts the kept
    samples the parser refused, by why (``duplicate_series``, ``long_labels``, ``series_over_limit``).
    """

    samples: dict[str, list[tuple[Labels, float]]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    sample_lines: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
