"""What the terminal shows: the live area of `watch` on a TTY and the incident event lines.

Rendering is a pure function of a plain snapshot (``render(snapshot, width)``), so it is tested at any
width without a terminal. Everything that comes from a target (names, models, summaries, the brain's
text) is put into ``rich.text.Text`` as plain text, never parsed as markup: a model called ``[/]`` is
shown as ``[/]``.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

# (signal, header, format), in the order they are shown.
_SIGNALS = (("kv_usage", "KV", "{:.0%}"), ("requests_waiting", "wait", "{:.0f}"),
            ("requests_running", "run", "{:.0f}"), ("preemptions_per_s", "preempt/s", "{:.1f}"),
            ("ttft_p95_s", "TTFT p95", "{:.2f}s"), ("prefix_cache_hit_ratio", "prefix hit", "{:.0%}"))
# Columns in the order they are given up as the terminal narrows (first dropped first). Target and
# state never drop: they say which engine is in trouble. KV and the queue are the first signs of most
# incidents, so they stay longest.
_DROP_ORDER = ("engine", "model", "prefix hit", "TTFT p95", "run", "preempt/s", "wait", "KV")
_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "ok": "green", "down": "bold red"}
_MAX_TARGET = 24


@dataclass(frozen=True)
class TargetRow:
    url: str
    name: str
    engine: str = "unknown"
    model: str = "-"
    values: Mapping[str, float] = field(default_factory=dict)
    severity: str = "ok"  # ok | warning | critical | down
    codes: tuple[str, ...] = ()
    failure: str = ""  # the last scrape failure, described in full
    failure_short: str = ""  # the same in a word or two, for the table cell


@dataclass(frozen=True)
class Snapshot:
    rows: Sequence[TargetRow] = ()
    incidents: Sequence[Mapping[str, Any]] = ()  # IncidentDocs, oldest first
    proactive: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # url -> answer
    brain_failures: int = 0
    brain_error: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)  # url -> what the operator calls it
    footer: str = ""


# -- naming -------------------------------------------------------------------------------------

def short_names(targets: Iterable[tuple[str, str]]) -> dict[str, str]:
    """url -> the target's ``name`` from the targets file, else the shortest part of its URL that still
    tells it apart from every other target (host label, host, host:port, then host:port/path)."""
    pairs = list(targets)
    levels = {url: _candidates(url) for url, _ in pairs}
    # How many targets could be called each name: linear in the targets, redrawn every cycle.
    holders = Counter(c for cands in levels.values() for c in set(cands))
    out = {}
    for url, name in pairs:
        if name:
            out[url] = name
            continue
        out[url] = next((c for c in levels[url] if holders[c] == 1), levels[url][-1])
    return out


def _candidates(url: str) -> list[str]:
    rest = url.split("://", 1)[-1]
    hostport, _, path = rest.partition("/")
    hostport = hostport.rsplit("@", 1)[-1]  # never show userinfo: it may hold a password
    host = hostport.rsplit(":", 1)[0] if not hostport.endswith("]") else hostport
    is_ip = bool(re.fullmatch(r"[\d.]+|\[.*\]", host))
    cands = [] if is_ip else [host.split(".")[0]]
    cands += [host, hostport]
    path = path.split("?", 1)[0].rstrip("/")
    if path and path != "metrics":
        # The /metrics every engine ends with tells nothing apart: leave it off when the rest differs.
        short = path.removesuffix("/metrics")
        cands += [f"{hostport}/{short}", f"{hostport}/{path}"]
    return list(dict.fromkeys(cands))


# -- the live area --------------------------------------------------------------------------------

def render(snap: Snapshot, width: int) -> RenderableType:
    """The table of targets and, under it, the latest incident in detail, proactive advisories and brain
    failures. Columns drop in _DROP_ORDER until the table fits ``width``."""
    parts: list[RenderableType] = [_table(snap, width)]
    down = [r for r in snap.rows if r.severity == "down" and r.failure]
    for r in down[:3]:
        parts.append(_line((f"{r.name}", "bold red"), f": {r.failure}"))
    if len(down) > 3:
        parts.append(Text(f"... and {len(down) - 3} more targets down", style="red"))
    inc = _selected(snap.incidents)
    if inc is not None:
        parts.append(incident_detail(inc, snap.names, width))
    for url, answer in snap.proactive.items():
        advisories = answer.get("advisories") or []
        if advisories:
            summary = str((answer.get("diagnosis") or {}).get("summary") or "")
            line = _line(("proactive ", "bold cyan"), (snap.names.get(url, url), "bold"), ": " + summary)
            parts.append(line)
            parts.extend(_advisory_line(a) for a in advisories[:2])
    if snap.brain_failures:
        parts.append(_line(("brain ", "bold magenta"),
                           f"{snap.brain_failures} LLM/remote call(s) failed; the rules' diagnosis stands"
                           + (f" (last: {snap.brain_error})" if snap.brain_error else "")))
    if snap.footer:
        parts.append(Text(snap.footer, style="dim"))
    return Group(*parts)


def _table(snap: Snapshot, width: int) -> Table:
    rows = [_cells(r) for r in snap.rows]
    headers = ["target", "state", *(h for _, h, _ in _SIGNALS), "model", "engine"]
    widths = {h: max([len(h), *(len(c[h].plain) for c in rows)]) for h in headers}
    widths["target"] = min(widths["target"], _MAX_TARGET)
    shown = list(headers)
    # Two spaces between columns; give columns up until the table fits.
    for h in _DROP_ORDER:
        if sum(widths[c] + 2 for c in shown) <= width:
            break
        shown.remove(h)
    state_room = width - sum(widths[c] + 2 for c in shown if c != "state") - 2
    targets = len({r.url for r in snap.rows})
    down = len({r.url for r in snap.rows if r.severity == "down"})
    open_ = sum(1 for i in snap.incidents if i.get("resolved_at") is None)
    title = f"InferGuard  {targets} target(s), {down} down, {open_} open incident(s)"
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0), title=title,
                  title_justify="left", title_style="bold", expand=False)
    for h in shown:
        numeric = h not in ("target", "state", "model", "engine")
        table.add_column(h, justify="right" if numeric else "left", no_wrap=True, overflow="ellipsis",
                         max_width=widths[h] if h != "state" else max(8, state_room),
                         min_width=min(widths[h], 8) if h in ("target", "state") else None)
    for c in rows:
        table.add_row(*(c[h] for h in shown))
    if not rows:
        table.add_row(Text("waiting for the first scrape...", style="dim"), *([""] * (len(shown) - 1)))
    return table


def _cells(r: TargetRow) -> dict[str, Text]:
    cells = {"target": Text(r.name), "model": Text(r.model), "engine": Text(r.engine)}
    for key, header, fmt in _SIGNALS:
        v = r.values.get(key)
        cells[header] = Text(fmt.format(v) if v is not None and math.isfinite(v) else "?",
                             style="" if v is not None else "dim")
    if r.severity == "down":
        state = "down" + (f": {r.failure_short}" if r.failure_short else "")
    elif r.codes:
        state = f"{r.severity} {r.codes[0]}" + (f" +{len(r.codes) - 1}" if len(r.codes) > 1 else "")
    else:
        state = r.severity
    cells["state"] = Text(state, style=_SEVERITY_STYLE.get(r.severity, ""))
    return cells


def _selected(incidents: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The incident worth the detail area: the most recently changed open one, else the last resolved."""
    open_ = [i for i in incidents if i.get("resolved_at") is None]
    pool = open_ or list(incidents)
    return max(pool, key=lambda i: (i.get("updated_at") or 0, i.get("opened_at") or 0), default=None)


def incident_detail(inc: Mapping[str, Any], names: Mapping[str, str], width: int = 80) -> RenderableType:
    sev = str(inc.get("severity", "warning"))
    status = "resolved" if inc.get("resolved_at") is not None else "open"
    head = _line(("● " if status == "open" else "✓ ", _SEVERITY_STYLE.get(sev, "") if status == "open" else "green"),
                 (f"{sev} " if status == "open" else "resolved ", "bold"),
                 (names.get(str(inc.get("target")), str(inc.get("target"))), "bold"),
                 f"  {inc.get('model', '')}  {inc.get('id', '')}")
    lines: list[RenderableType] = [head]
    active = [a for a in inc.get("anomalies", []) if a.get("active", True)] if status == "open" else []
    for a in active[:4]:
        lines.append(_line("  ", (f"{a.get('code')}", _SEVERITY_STYLE.get(str(a.get("severity")), "")),
                           f": {a.get('summary', '')}"))
    d = inc.get("diagnosis")
    if d and status == "open":
        lines.append(_diagnosis_line(d))
        lines.extend(_advisory_line(a) for a in (inc.get("advisories") or [])[:3])
    return Group(*lines)


def _diagnosis_line(d: Mapping[str, Any]) -> Text:
    conf = d.get("confidence")
    how = ", ".join(x for x in (str(d.get("source") or ""),
                                f"confidence {conf:.2f}" if isinstance(conf, int | float) else "") if x)
    why = d.get("fallback_reason")
    return _line("  diagnosis: ", (str(d.get("root_cause", "?")), "bold"), f" ({how})" if how else "",
                 f" [LLM not used: {why}]" if why else "", f" {d.get('summary', '')}".rstrip())


def _advisory_line(a: Mapping[str, Any]) -> Text:
    steps = [str(s) for s in (a.get("engine_steps") or [])[:1]]
    return _line("  advice: ", (str(a.get("action", "?")), "cyan"), f" ({a.get('horizon', '')})",
                 f" {steps[0]}" if steps else "")


def _line(*parts: str | tuple[str, str]) -> Text:
    text = Text()
    for p in parts:
        if isinstance(p, tuple):
            text.append(p[0], style=p[1])
        else:
            text.append(p)
    return text


# -- event lines (above the live area, and the demo's narration) -----------------------------------

def changes_text(changes: Sequence[str]) -> str:
    """The changes of one event, each said once: ``kv_pressure: warning->critical`` already says what
    ``severity warning->critical`` would repeat."""
    said = {c.split(": ", 1)[1] for c in changes if ": " in c}
    kept = [c for c in changes if not (c.startswith("severity ") and c.removeprefix("severity ") in said)]
    return ", ".join(kept)


def event_line(event: Mapping[str, Any], names: Mapping[str, str]) -> Text:
    """One line per incident transition (an EventDoc): when, what, where, what changed."""
    kind = str(event.get("event", "")).removeprefix("incident.")
    inc = event.get("incident") or {}
    style = {"opened": "bold red", "reopened": "bold red", "updated": "yellow", "resolved": "green"}.get(kind, "")
    changes = [str(c) for c in event.get("changes", [])]
    what = "all anomalies cleared" if kind == "resolved" else changes_text(changes)
    ts = event.get("ts", inc.get("updated_at"))
    when = time.strftime("%H:%M:%S ", time.localtime(ts)) if isinstance(ts, int | float) else ""
    return _line((when, "dim"), (f"incident {kind} ", style),
                 (names.get(str(inc.get("target")), str(inc.get("target", ""))), "bold"),
                 f" [{inc.get('severity', '')}] " if kind != "resolved" else " ", what)
