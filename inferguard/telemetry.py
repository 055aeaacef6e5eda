"""InferGuard's own metrics, on a registry passed in (one per daemon, one per test)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# The targets file's labels ride on inferguard_open_anomalies so a Prometheus rule can route by team or
# cluster. Cardinality stays bounded: the label names are fixed at start (at most this many) and their
# values come from the targets file, not from the engines.
MAX_TARGET_LABELS = 8
_RESERVED = {"target", "code", "severity", "job", "instance"}


def target_label_names(labels: Iterable[Mapping[str, str]]) -> tuple[str, ...]:
    """The label names of all targets that are valid Prometheus names and not ours, sorted, capped."""
    names = {k for m in labels for k in m if re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k)
             and not k.startswith("__") and k not in _RESERVED}
    return tuple(sorted(names)[:MAX_TARGET_LABELS])


class Telemetry:
    def __init__(self, registry: CollectorRegistry | None = None, target_labels: Sequence[str] = ()) -> None:
        self.registry = registry or CollectorRegistry()
        self.target_labels = tuple(target_labels)
        r = self.registry
        self.scrapes = Counter("inferguard_scrapes", "Scrapes by target and result", ["target", "result"], registry=r)
        self.scrape_duration = Histogram("inferguard_scrape_duration_seconds", "Scrape wall time", ["target"],
                                         registry=r)
        self.cycle_duration = Histogram("inferguard_cycle_duration_seconds",
                                        "One cycle: scrape every due target and process the results", registry=r)
        self.process_duration = Histogram("inferguard_process_duration_seconds",
                                          "Parse, normalise, detect and fold one scrape", registry=r,
                                          buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05))
        self.loop_lag = Histogram("inferguard_loop_lag_seconds", "How late the event loop woke a timer",
                                  registry=r, buckets=_LAG_BUCKETS)
        self.open_anomalies = Gauge("inferguard_open_anomalies",
                                    "Active anomalies by target, code, severity and the targets file's labels",
                                    ["target", "code", "severity", *self.target_labels], registry=r)
        self.open_incidents = Gauge("inferguard_open_incidents", "Open incidents", registry=r)
        self.incident_events = Counter("inferguard_incident_events", "Incident transitions", ["kind"],
                                       registry=r)
        self.heartbeat = Gauge("inferguard_heartbeat_timestamp_seconds", "End of the last cycle", registry=r)
        self.targets = Gauge("inferguard_targets", "Targets watched", registry=r)
        self.sink_failures = Counter("inferguard_sink_failures", "Events a sink failed to take", ["sink"],
                                     registry=r)
        self.sink_dropped = Counter("inferguard_sink_dropped", "Events dropped because a sink's queue was full",
                                    ["sink"], registry=r)
        self.store_failures = Counter("inferguard_store_failures", "Incident store calls that failed or timed out",
                                      ["verb"], registry=r)
        self.probes = Counter("inferguard_probes", "Canary probes by target and outcome (ok, failed, not_run)",
                              ["target", "outcome"], registry=r)
        self.probe_ttft = Gauge("inferguard_probe_ttft_seconds", "Time to first token of the last successful probe",
                                ["target"], registry=r)

    def show_open_anomalies(self, incidents: Iterable[Mapping[str, Any]]) -> None:
        """Reset inferguard_open_anomalies to the active anomalies of these open IncidentDocs."""
        self.open_anomalies.clear()
        for inc in incidents:
            labels = inc.get("labels") or {}
            extra = [str(labels.get(k, ""))[:128] for k in self.target_labels]
            for a in inc.get("anomalies", []):
                if a.get("active"):
                    self.open_anomalies.labels(inc["target"], a["code"], a["severity"], *extra).inc()

    def watch_llm(self, usage: Callable[[], Mapping[str, Any] | None]) -> None:
        """Publish the brain's LLM usage (``LocalBrain.usage``) as ``inferguard_llm_*`` on each scrape."""
        self.registry.register(LLMUsageCollector(usage))


# The brain's LLM usage (rlm_agent's LLMClient.usage()), read when /metrics is scraped: the counters live
# in the brain's client, so they are reported, not mirrored (no double bookkeeping, nothing to reset).
_LLM_COUNTERS = (("calls", "HTTP requests sent to the LLM, retries included"),
                 ("retries", "LLM requests retried after a 429 or 5xx"),
                 ("cache_hits", "LLM answers served from the response cache"),
                 ("failures", "LLM calls that fell back to the rules (budget refusals included)"),
                 ("budget_refusals", "LLM calls not sent because the hourly budget or its proactive share was spent"))


class LLMUsageCollector:
    """``inferguard_llm_*`` from a ``usage()`` dict: per ``purpose`` (incident, proactive)."""

    def __init__(self, usage: Callable[[], Mapping[str, Any] | None]) -> None:
        self._usage = usage

    def describe(self) -> list[Metric]:
        return []  # unchecked: the families exist only once an LLM is configured

    def collect(self) -> Iterator[Metric]:
        usage = self._usage()
        if not usage:
            return
        purposes = [p for p in ("incident", "proactive") if isinstance(usage.get(p), Mapping)]
        for key, doc in _LLM_COUNTERS:
            family = CounterMetricFamily(f"inferguard_llm_{key}", doc, labels=["purpose"])
            for p in purposes:
                family.add_metric([p], float(usage[p].get(key) or 0))
            yield family
        tokens = CounterMetricFamily("inferguard_llm_tokens", "LLM tokens used", labels=["purpose", "kind"])
        for p in purposes:
            for kind in ("prompt", "completion"):
                tokens.add_metric([p, kind], float(usage[p].get(f"{kind}_tokens") or 0))
        yield tokens
        costs = [(p, usage[p].get("cost_usd")) for p in purposes]
        if any(c is not None for _, c in costs):  # only when a price is set: unknown is not 0
            cost = CounterMetricFamily("inferguard_llm_cost_usd", "LLM cost at the configured prices",
                                       labels=["purpose"])
            for p, c in costs:
                cost.add_metric([p], float(c or 0.0))
            yield cost
        budget = usage.get("budget") or {}
        limits = GaugeMetricFamily("inferguard_llm_budget_calls_per_hour",
                                   "LLM calls allowed per sliding hour (absent: no limit)", labels=["purpose"])
        for p, limit in (("incident", budget.get("max_calls_per_hour")),
                         ("proactive", budget.get("proactive_max_calls_per_hour"))):
            if limit is not None:
                limits.add_metric([p], float(limit))
        yield limits
        used = GaugeMetricFamily("inferguard_llm_calls_last_hour", "LLM calls in the last sliding hour",
                                 labels=["purpose"])
        for p, n in sorted((budget.get("calls_last_hour") or {}).items()):
            used.add_metric([str(p)], float(n))
        yield used
