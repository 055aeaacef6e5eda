"""A tiny reader for the recorded vLLM timelines (tests/data/vllm_*.jsonl.gz): just enough of the
Prometheus text format to rebuild the brain's window from real scrapes, without the daemon's
pipeline. Counters become rates between consecutive scrapes (reset-aware); TTFT p95 comes from
histogram bucket deltas. Absent stays absent."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

# The recordings live in the repository checkout, not in the installed package.
DATA = Path(__file__).resolve().parents[2] / "tests" / "data"

GAUGES = {"vllm:kv_cache_usage_perc": "kv_usage", "vllm:num_requests_running": "requests_running",
          "vllm:num_requests_waiting": "requests_waiting"}
COUNTERS = {"vllm:num_preemptions_total": "preemptions", "vllm:prefix_cache_queries_total": "pq",
            "vllm:prefix_cache_hits_total": "ph"}
HISTOGRAMS = {"vllm:time_to_first_token_seconds_bucket": "ttft_p95_s",
              "vllm:request_queue_time_seconds_bucket": "queue_time_p95_s"}


def parse(text: str) -> tuple[dict[str, float], dict[str, dict[float, float]]]:
    """Each wanted family over its series (KV usage: max; counts: sum); histogram buckets by bound."""
    values: dict[str, float] = {}
    hists: dict[str, dict[float, float]] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name not in GAUGES and name not in COUNTERS and name not in HISTOGRAMS:
            continue
        value = float(line.rsplit(" ", 1)[1])
        if name in HISTOGRAMS:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = math.inf if le == "+Inf" else float(le)
            buckets = hists.setdefault(name, {})
            buckets[bound] = buckets.get(bound, 0.0) + value
        elif name == "vllm:kv_cache_usage_perc":
            values[name] = max(values.get(name, 0.0), value)  # max over ranks, never a sum
        else:
            values[name] = values.get(name, 0.0) + value
    return values, hists


def quantile(q: float, prev: dict[float, float], cur: dict[float, float]) -> float | None:
    delta = sorted((b, cur[b] - prev.get(b, 0.0)) for b in cur)
    total = delta[-1][1] if delta else 0.0
    if total <= 0:
        return None
    rank, lo, below = q * total, 0.0, 0.0
    for bound, count in delta:
        if count >= rank:
            if math.isinf(bound):
                return lo
            return lo + (bound - lo) * ((rank - below) / max(count - below, 1e-12))
        lo, below = bound, count
    return lo


def load(scenario: str, data: Path = DATA) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    path, phases = data / f"vllm_{scenario}.jsonl.gz", data / f"vllm_{scenario}.phases.json"
    if not path.exists() or not phases.exists():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    meta: dict[str, Any] = json.loads(phases.read_text("utf-8"))
    return rows, meta


def window(rows: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    """Canonical-signal samples for the successful scrapes with start <= ts < end."""
    out: list[dict[str, Any]] = []
    prev: tuple[float, dict[str, float], dict[str, dict[float, float]]] | None = None
    for row in rows:
        if "metrics" not in row:
            continue
        ts = float(row["ts"])
        values, buckets = parse(row["metrics"])
        sample: dict[str, float] = {canon: values[raw] for raw, canon in GAUGES.items() if raw in values}
        if prev is not None and ts > prev[0]:
            dt = ts - prev[0]
            d = {k: values[k] - prev[1][k] for k in COUNTERS if k in values and k in prev[1]}
            if all(v >= 0 for v in d.values()):  # a counter went backwards: restart, no rate this time
                if "vllm:num_preemptions_total" in d:
                    sample["preemptions_per_s"] = d["vllm:num_preemptions_total"] / dt
                q = d.get("vllm:prefix_cache_queries_total")
                if q is not None:
                    sample["prefix_cache_queries_per_s"] = q / dt
                    if q > 0 and "vllm:prefix_cache_hits_total" in d:
                        sample["prefix_cache_hit_ratio"] = d["vllm:prefix_cache_hits_total"] / q
                for raw, canon in HISTOGRAMS.items():
                    if raw in buckets:
                        p95 = quantile(0.95, prev[2].get(raw, {}), buckets[raw])
                        if p95 is not None:
                            sample[canon] = p95
        prev = (ts, values, buckets)
        if start <= ts < end:
            out.append({"ts": ts, "values": sample})
    return out


def phase(phases: dict[str, Any], name: str) -> tuple[float, float]:
    """Start and end of a phase, or of consecutive phases written ``first+last``."""
    first, _, last = name.partition("+")
    by_name = {p["name"]: p for p in phases["phases"]}
    return float(by_name[first]["start"]), float(by_name[last or first]["end"])


def has_phase(phases: dict[str, Any], name: str) -> bool:
    names = {p["name"] for p in phases["phases"]}
    return all(part in names for part in name.split("+"))
