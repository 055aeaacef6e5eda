"""The live terminal view for `watch` on a TTY (rich): a sink whose event lines scroll above a live area
redrawn at the end of every cycle: the targets, their key signals and the latest incident in detail
(rendered by :mod:`inferguard.terminal`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from inferguard.protocols import CycleStatus, EventDoc
from inferguard.terminal import Snapshot, TargetRow, event_line, render, short_names

_RECENT = 20  # incidents the view keeps for its detail area (the latest one is shown)


class LiveView:
    name = "view"

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self.names: dict[str, str] = {}
        self._incidents: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def notice(self, text: str, style: str = "") -> None:
        """A line above the live area (start-up, warnings); never parsed as markup."""
        self.console.print(Text(text, style=style), soft_wrap=not self.console.is_terminal)

    async def send(self, event: EventDoc) -> None:
        inc = event["incident"]
        self._incidents[str(inc["id"])] = dict(inc)
        self._incidents = dict(list(self._incidents.items())[-_RECENT:])
        self.console.print(event_line(event, self.names), soft_wrap=not self.console.is_terminal)

    def status(self, status: CycleStatus) -> None:
        snap = snapshot_of(status, self._incidents)
        self.names = dict(snap.names)
        self._live.update(render(snap, self.console.width), refresh=True)

    async def aclose(self) -> None:
        pass


def snapshot_of(status: CycleStatus, incidents: dict[str, dict[str, Any]]) -> Snapshot:
    """What the view shows, from the cycle's status and the incidents heard so far."""
    targets = status.targets()
    names = short_names((t["target"], t.get("name", "")) for t in targets)
    fresh = {str(d["id"]): d for d in status.open_incidents()}
    recent = [fresh.get(k, doc) for k, doc in incidents.items()] + [d for k, d in fresh.items() if k not in incidents]
    open_by_target = {d["target"]: d for d in fresh.values()}
    rows = []
    for t in targets:
        url = t["target"]
        inc = open_by_target.get(url)
        sev = str(inc["severity"]) if inc else "ok"
        codes = tuple(sorted({a["code"] for a in inc["anomalies"] if a.get("active")})) if inc else ()
        if t.get("down"):
            sev = "down"
        failure, short = str(t.get("failure") or ""), str(t.get("failure_short") or "")
        models = t.get("models") or {}
        if not models:
            rows.append(TargetRow(url, names[url], str(t.get("engine", "unknown")), "-", {}, sev, codes, failure,
                                  short))
        for model, s in models.items():
            # A target that is down has no current values: its last ones would read as live.
            values = {} if sev == "down" else {k: v for k, v in (s.get("values") or {}).items() if v is not None}
            rows.append(TargetRow(url, names[url], str(t.get("engine", "unknown")), model, values, sev, codes,
                                  failure, short))
    brain = status.brain()
    return Snapshot(rows=rows, incidents=recent, proactive=dict(brain.get("proactive") or {}),
                    brain_failures=int(brain.get("failures") or 0), brain_error=brain.get("last_error"),
                    names=names)
