"""The live terminal view for `watch` on a TTY (rich): targets, their key signals, open incidents."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from inferguard.incidents import IncidentEvent

_COLUMNS = (("kv_usage", "KV", "{:.0%}"), ("requests_running", "run", "{:.0f}"), ("requests_waiting", "wait", "{:.0f}"),
            ("preemptions_per_s", "preempt/s", "{:.1f}"), ("ttft_p95_s", "TTFT p95", "{:.3f}s"),
            ("prefix_cache_hit_ratio", "prefix hit", "{:.0%}"))


class LiveView:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._live = Live(console=self.console, auto_refresh=False, transient=False)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def incident(self, ev: IncidentEvent) -> None:
        inc = ev.incident
        style = {"opened": "bold red", "updated": "yellow", "resolved": "green"}[ev.kind]
        cause = (inc.diagnosis or {}).get("root_cause", "")
        self.console.log(f"[{style}]incident {ev.kind}[/] {inc.target} {inc.severity} "
                         f"{', '.join(inc.active_codes()) or '-'} {cause} {' '.join(ev.changes)}")

    def update(self, daemon: Any) -> None:
        table = Table(title="InferGuard", expand=True)
        for name in ("target", "engine", "model", *(c[1] for c in _COLUMNS), "state"):
            table.add_column(name)
        open_by_target = {i.target: i for i in daemon.pipeline.book.open_incidents()}
        for url, models in daemon.pipeline.latest().items():
            inc = open_by_target.get(url)
            state = f"[red]{inc.severity}: {', '.join(inc.active_codes())}[/]" if inc else "[green]ok[/]"
            if daemon.pipeline.bank.is_down(url):
                state = "[red]down[/]"
            for model, s in (models or {"-": None}).items():
                cells = [fmt.format(s.values[k]) if s is not None and k in s.values else "?"
                         for k, _, fmt in _COLUMNS]
                table.add_row(url, daemon.pipeline.engine_of(url), model, *cells, state)
        self._live.update(Group(table), refresh=True)
