"""Heard once per change: which incident events become notifications.

- **open**: the first event of an incident is announced ("firing"), unless it is silenced; a silenced
  incident is announced when the silence ends while it is still open.
- **sustained severity change**: announced once the incident's severity has held its new value for
  ``sustain_s`` (a wobble back before that is no news).
- **repeat**: a still-open incident is announced again after ``repeat_s`` without any notification.
- **resolve**: an announced incident's resolution is always delivered, even under a silence, so no
  receiver is left holding a firing alert.
- never on an evidence refresh (new numbers, the same anomalies and severity).

The state is a plain dict (saved in the StateStore), so a restart neither repeats nor loses a decision.
Time is passed in: replay is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

KEEP_RESOLVED_S = 86400.0  # a resolved incident's state is kept a day, so a late duplicate event is ignored

Notice = dict[str, Any]
Silenced = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    repeat_s: float = 4 * 3600.0
    sustain_s: float = 60.0


class NotifyPolicy:
    def __init__(self, config: PolicyConfig | None = None, state: Mapping[str, Any] | None = None) -> None:
        self.config = config or PolicyConfig()
        self.incidents: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (state or {}).items()}

    def state(self) -> dict[str, Any]:
        return self.incidents

    def open_incidents(self) -> list[dict[str, Any]]:
        return [st for st in self.incidents.values() if not st["resolved"] and st["announced"]]

    def on_event(self, event: Mapping[str, Any], now: float, silenced: Silenced) -> list[Notice]:
        inc = event.get("incident") or {}
        iid = str(inc.get("id", ""))
        if not iid:
            return []
        kind = str(event.get("event", "")).removeprefix("incident.")
        st = self.incidents.get(iid)
        if kind == "resolved":
            if st is None or st["resolved"]:
                return []  # never heard of (nothing was announced) or already resolved: no news
            st["resolved"], st["resolved_at"], st["doc"] = True, now, dict(inc)
            st["pending"] = None
            if not st["announced"]:
                return []
            return [self._notice(st, "resolved", now)]
        if st is None:
            st = self.incidents[iid] = {"id": iid, "doc": dict(inc), "announced": False, "severity": None,
                                        "last_at": None, "pending": None, "resolved": False, "resolved_at": None,
                                        "opens": 0, "n": 0}
        elif st["resolved"]:
            if kind != "reopened" and not any(str(c).startswith("reopened") for c in event.get("changes") or []):
                return []  # a late or replayed event of a resolved incident is no news
            # Reopened (flap): the trouble is back, which is news, once.
            st["resolved"], st["resolved_at"], st["announced"], st["pending"] = False, None, False, None
        st["doc"] = dict(inc)
        sev = inc.get("severity")
        if st["announced"]:
            if sev == st["severity"]:
                st["pending"] = None
            elif st["pending"] is None or st["pending"]["severity"] != sev:
                st["pending"] = {"severity": sev, "since": now}
        return self._decide(st, now, silenced)

    def due(self, now: float, silenced: Silenced) -> list[Notice]:
        out: list[Notice] = []
        for st in list(self.incidents.values()):
            out.extend(self._decide(st, now, silenced))
        self._prune(now)
        return out

    # -- internals -----------------------------------------------------------------------------
    def _decide(self, st: dict[str, Any], now: float, silenced: Silenced) -> list[Notice]:
        if st["resolved"]:
            return []
        quiet = silenced(st["doc"])
        if not st["announced"]:
            if quiet:
                return []
            st["announced"], st["severity"], st["pending"] = True, st["doc"].get("severity"), None
            st["opens"] += 1
            return [self._notice(st, "firing", now)]
        pending = st["pending"]
        if pending is not None and now - float(pending["since"]) >= self.config.sustain_s:
            previous, st["severity"], st["pending"] = st["severity"], pending["severity"], None
            if quiet:
                return []
            return [self._notice(st, "severity", now, previous_severity=previous)]
        if not quiet and st["last_at"] is not None and now - float(st["last_at"]) >= self.config.repeat_s:
            return [self._notice(st, "repeat", now)]
        return []

    def _notice(self, st: dict[str, Any], kind: str, now: float, **extra: Any) -> Notice:
        st["n"] += 1
        st["last_at"] = now
        doc = dict(st["doc"])
        doc["severity"] = st["severity"] or doc.get("severity")
        return {"key": f"{st['id']}:{kind}:{st['opens']}:{st['n']}", "kind": kind, "incident": doc, "at": now,
                **extra}

    def _prune(self, now: float) -> None:
        for iid, st in list(self.incidents.items()):
            if st["resolved"] and now - float(st["resolved_at"] or now) > KEEP_RESOLVED_S:
                del self.incidents[iid]
