"""The live terminal view for `watch` on a TTY (rich): a sink that prints incident transitions and, at
the end of every cycle, redraws the table of targets, their key signals and open incidents."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from inferguard.protocols import CycleStatus, EventDoc

_COLUMNS = (("kv_usage", "KV", "{:.0%}"), ("requests_running", "run", "{:.0f}"), ("requests_waiting", "wait", "{:.0f}"),
            ("preemptions_per_s", "preempt/s", "{:.1f}"), ("ttft_p95_s", "TTFT p95", "{:.3f}s"),
            ("prefix_cache_hit_ratio", "prefix hit", "{:.0%}"))


def _active(inc: dict[str, Any]) -> list[str]:
    return sorted({a["code"] for a in inc.get("anomalies", []) if a.get("active")})


class LiveView:
    name = "view"

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._live = Live(console=self.console, auto_refresh=False, transient=False)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    async def send(self, event: EventDoc) -> None:
        inc = event["incident"]
        kind = str(event["event"]).removeprefix("incident.")
        style = {"opened": "bold red", "reopened": "bold red", "updated": "yellow",
                 "resolved": "green"}.get(kind, "white")
        cause = (inc.get("diagnosis") or {}).get("root_cause", "")
        self.console.log(f"[{style}]incident {kind}[/] {inc['target']} {inc['severity']} "
                         f"{', '.join(_active(inc)) or '-'} {cause} {' '.join(event.get('changes', []))}")

    def status(self, status: CycleStatus) -> None:
        table = Table(title="InferGuard", expand=True)
        for name in ("target", "engine", "model", *(c[1] for c in _COLUMNS), "state"):
            table.add_column(name)
        open_by_target = {i["target"]: i for i in status.open_incidents()}
        for t in status.targets():
            url = t["target"]
            inc = open_by_target.get(url)
            state = f"[red]{inc['severity']}: {', '.join(_active(inc))}[/]" if inc else "[green]ok[/]"
            if t["down"]:
                state = "[red]down[/]"
            for model, s in (t["models"] or {"-": None}).items():
                values = s["values"] if s is not None else {}
                cells = [fmt.format(values[k]) if values.get(k) is not None else "?" for k, _, fmt in _COLUMNS]
                table.add_row(url, t["engine"], model, *cells, state)
        self._live.update(Group(table), refresh=True)

    async def aclose(self) -> None:
        pass
