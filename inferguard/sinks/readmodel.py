"""The API read model: what the JSON API, the dashboard and ``inferguard serve`` read
(:class:`inferguard.api.readmodel.ApiReadModel`).

A sink: it hears every incident event (the EventDoc the logs carry) through the fan-out, each scrape's
outcome from the daemon (for the sparklines), and the end of every cycle (open incidents are read fresh
from it: their evidence moves between events). Memory, alerting and actuation plug their readers in
(``recall``, the silences' state store, the actuation audit); until they do those answer empty and say so
(``"source": "none"``). The silences and the audit live in async stores: those reads are async.
Documents are JSON-safe (no NaN).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inferguard.errors import SilenceError
from inferguard.jsonsafe import finite
from inferguard.protocols import CycleStatus, StateStore
from inferguard.sinks.silences import add_silence, expire_silence, list_silences

# The four series the dashboard draws per target (canonical signal names).
SPARK_SIGNALS = ("kv_usage", "requests_waiting", "ttft_p95_s", "preemptions_per_s")
SPARK_POINTS = 60
MAX_RESOLVED = 1000  # resolved incidents kept for the API; open ones are always kept
MAX_EVENTS = 200  # events kept per incident


Recall = Callable[[str, int], Awaitable[list[dict[str, Any]]]]
# The actuation audit, oldest first: the newest ``limit`` entries (actuation.audit_log over the state store).
ActionLister = Callable[[int], Awaitable[list[dict[str, Any]]]]
AUDIT_READ = 1000  # entries read to filter one incident's (the audit keeps as many)
WindowReader = Callable[[str, str], list[dict[str, Any]]]
ProactiveReader = Callable[[], Mapping[str, Mapping[str, Any]]]


@dataclass
class _TargetView:
    url: str
    name: str
    engine: str = "unknown"
    model: str = ""
    last_scrape: float | None = None
    last_ok: float | None = None
    last_error: str | None = None
    probe: dict[str, Any] | None = None  # the last canary probe's result, when the daemon runs probes
    series: dict[str, deque[tuple[float, float | None]]] = field(default_factory=dict)


class ReadModel:
    """A :class:`~inferguard.protocols.Sink` and :class:`~inferguard.protocols.StatusListener`."""

    name = "api"

    def __init__(self, targets: Iterable[tuple[str, str]] = (), *, window: WindowReader | None = None,
                 recall: Recall | None = None, silences: StateStore | None = None,
                 actions: ActionLister | None = None, proactive: ProactiveReader | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._targets: dict[str, _TargetView] = {}
        for url, name in targets:
            self._target(url, name)
        self._incidents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._rev = 0
        self._cycle: CycleStatus | None = None
        self.window_reader = window
        self.proactive_reader = proactive
        self.recall_reader = recall
        # Where silences live (the notifier's state store, re-read on each of its decisions); None
        # while no notification channel runs, when a silence would have no effect.
        self.silence_store = silences
        self.action_reader = actions
        self.clock = clock

    def add_targets(self, targets: Iterable[tuple[str, str]]) -> None:
        for url, name in targets:
            self._target(url, name)

    def _target(self, url: str, name: str = "") -> _TargetView:
        view = self._targets.get(url)
        if view is None:
            view = self._targets[url] = _TargetView(url, name or url)
        return view

    # -- fed by the daemon -----------------------------------------------------------------------
    def observe(self, target: str, ts: float, engine: str, model: str, error: str | None,
                values: Mapping[str, float] | None) -> None:
        view = self._target(target)
        view.last_scrape, view.last_error = ts, error
        view.engine = engine or view.engine
        view.model = model or view.model
        if error is None:
            view.last_ok = ts
        for name in SPARK_SIGNALS:
            # A failed scrape or an absent signal is a gap in the line, never a 0.
            value = None if values is None else values.get(name)
            series = view.series.setdefault(name, deque(maxlen=SPARK_POINTS))
            series.append((ts, _num(value)))
        self._rev += 1

    def probed(self, target: str, result: Mapping[str, Any]) -> None:
        """The last canary probe of ``target`` (ok, ran, status, ttft_s, tpot_s, tokens, error, ts)."""
        self._target(target).probe = finite(dict(result))
        self._rev += 1

    def event(self, doc: Mapping[str, Any]) -> None:
        """An EventDoc (``IncidentEvent.to_dict()``) or any mapping with an ``incident``."""
        inc = finite(dict(doc["incident"]))
        previous = self._incidents.pop(inc["id"], None)
        if "events" not in inc:  # keep the incident's story here when the document does not carry one
            story = list((previous or {}).get("events", []))[-(MAX_EVENTS - 1):]
            kind = str(doc.get("event", "")).removeprefix("incident.")
            story.append({"ts": doc.get("ts", inc.get("updated_at")), "kind": kind,
                          "changes": list(doc.get("changes", []))})
            inc["events"] = story
        self._incidents[inc["id"]] = inc
        resolved = [k for k, v in self._incidents.items() if v.get("status") == "resolved"]
        for k in resolved[:max(0, len(resolved) - MAX_RESOLVED)]:
            del self._incidents[k]
        self._rev += 1

    async def send(self, event: Mapping[str, Any]) -> None:
        self.event(event)

    async def aclose(self) -> None:
        return None

    def status(self, status: CycleStatus) -> None:
        """The end of a cycle (runs on the loop: only keeps the reference)."""
        self._cycle = status
        self._rev += 1

    # -- read by the API -------------------------------------------------------------------------
    def revision(self) -> int:
        return self._rev

    def targets(self) -> list[dict[str, Any]]:
        open_by_target: dict[str, list[dict[str, Any]]] = {}
        for inc in self.incidents():
            if inc.get("status") == "open":
                open_by_target.setdefault(inc["target"], []).append(inc)
        out = []
        for v in self._targets.values():
            open_ = open_by_target.get(v.url, [])
            health = "down" if v.last_error else ("unknown" if v.last_scrape is None else "healthy")
            if health == "healthy" and open_:
                health = max((i.get("severity", "warning") for i in open_), key=lambda s: s == "critical")
            out.append({
                "target": v.url, "name": v.name, "engine": v.engine, "model": v.model, "health": health,
                "last_scrape": v.last_scrape, "last_ok": v.last_ok, "last_error": v.last_error,
                "open_incidents": [{"id": i["id"], "severity": i.get("severity"), "codes": i.get("codes", []),
                                    "root_cause": (i.get("diagnosis") or {}).get("root_cause")} for i in open_],
                "series": {k: [x for _, x in s] for k, s in v.series.items()}, "probe": v.probe,
            })
        return out

    def incidents(self) -> list[dict[str, Any]]:
        fresh = {str(d["id"]): d for d in self._cycle.open_incidents()} if self._cycle else {}
        docs = [self._fresh(doc, fresh.get(k)) for k, doc in self._incidents.items()]
        return sorted(docs, key=lambda i: (-float(i.get("opened_at") or 0), i["id"]))

    @staticmethod
    def _fresh(doc: dict[str, Any], now: dict[str, Any] | None) -> dict[str, Any]:
        if now is None or doc.get("status") != "open":
            return doc
        return {**finite(dict(now)), "events": doc.get("events", [])}

    async def incident(self, incident_id: str) -> dict[str, Any] | None:
        inc = self._incidents.get(incident_id)
        if inc is None:
            return None
        if self._cycle is not None:
            inc = self._fresh(inc, next((d for d in self._cycle.open_incidents() if d["id"] == incident_id), None))
        window: list[dict[str, Any]] = []
        if self.window_reader is not None:
            window = finite(self.window_reader(inc["target"], inc.get("model", "")))
        actions = await self.actions(incident_id)
        return {**inc, "signals": window, "actions": actions["actions"], "actions_source": actions["source"]}

    async def recall(self, query: str, limit: int) -> dict[str, Any]:
        if self.recall_reader is not None:
            return {"source": "memory", "results": finite(await self.recall_reader(query, limit))}
        # No incident memory wired: search this process's own incidents by word overlap.
        words = {w for w in query.lower().split() if w}
        scored = []
        for inc in self.incidents():
            text = " ".join([inc.get("target", ""), inc.get("model", ""), inc.get("engine", ""),
                             " ".join(inc.get("codes", [])), str((inc.get("diagnosis") or {}).get("root_cause")),
                             str((inc.get("diagnosis") or {}).get("summary"))]).lower()
            hits = sum(1 for w in words if w in text)
            if hits:
                scored.append((hits / len(words), inc))
        scored.sort(key=lambda x: (-x[0], -float(x[1].get("opened_at") or 0)))
        return {"source": "process", "results": [{**i, "score": round(s, 3)} for s, i in scored[:limit]]}

    def advisories(self) -> dict[str, Any]:
        reactive = []
        for inc in self.incidents():
            if inc.get("status") != "open":
                continue
            for a in inc.get("advisories", []):
                reactive.append({**a, "incident": inc["id"], "target": inc["target"]})
        proactive = []
        answers: dict[str, Any] = {}
        if self.proactive_reader is not None:
            answers.update({t: finite(dict(a)) for t, a in self.proactive_reader().items()})
        for target, answer in answers.items():
            for a in answer.get("advisories", []):
                proactive.append({**a, "target": target})
        return {"reactive": reactive, "proactive": proactive}

    async def silences(self, include_expired: bool = False) -> dict[str, Any]:
        if self.silence_store is None:
            return {"source": "none", "silences": []}
        found = await list_silences(self.silence_store, self.clock(), include_expired=include_expired)
        return {"source": "alerting", "silences": finite(found)}

    async def add_silence(self, *, target: str, code: str, duration: str, comment: str) -> dict[str, Any]:
        """SilenceError naming the field when the request is invalid or no notification channel runs."""
        return await add_silence(self._silences(), target=target, code=code, duration=duration, comment=comment,
                                 now=self.clock(), created_by="api")

    async def expire_silence(self, silence_id: str) -> dict[str, Any]:
        return await expire_silence(self._silences(), silence_id, self.clock())

    def _silences(self) -> StateStore:
        if self.silence_store is None:
            raise SilenceError("silences", "no notification channel is configured, so a silence would have no "
                                           "effect (docs/alerting.md)")
        return self.silence_store

    async def actions(self, incident_id: str | None = None, limit: int = 100) -> dict[str, Any]:
        """The actuation audit, newest last; one incident's entries with ``incident_id``."""
        if self.action_reader is None:
            return {"source": "none", "actions": []}
        entries = await self.action_reader(AUDIT_READ if incident_id else limit)
        if incident_id is not None:
            entries = [e for e in entries if e.get("incident") == incident_id][-limit:]
        return {"source": "actuation", "actions": finite(entries)}


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 6)

