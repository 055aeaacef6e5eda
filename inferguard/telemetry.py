"""InferGuard's own metrics, on a registry passed in (one per daemon, one per test)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Telemetry:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
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
        self.open_anomalies = Gauge("inferguard_open_anomalies", "Active anomalies", ["target", "code"],
                                    registry=r)
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
