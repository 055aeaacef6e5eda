"""`inferguard recall` and `inferguard incidents list|show|note`: reading incident memory from a shell."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from inferguard import durations
from inferguard.cli_oneshot import with_memory
from inferguard.exitcodes import EXIT_USAGE
from inferguard.memory.store import Memory

incidents_app = typer.Typer(no_args_is_help=True, help="Incidents remembered in incident memory.")


def parse_since(text: str) -> float:
    """``--since``: how far back, read like every duration (:func:`inferguard.durations.parse_duration`)."""
    try:
        return durations.parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _say_fallback(memory: Memory, backend: str | None) -> None:
    """One line on stderr when a read the remote ``backend`` serves was answered by the embedded store."""
    reason = None if backend is None else memory.fallbacks.get(backend)
    if reason is not None:
        typer.echo(f"inferguard: warning: answered from the embedded store, not {backend} "
                   f"({' '.join(reason.split())})", err=True)


def _state(memory: Memory) -> str | None:
    return memory.state.name if memory.state is not None else None


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _line(inc: dict[str, Any]) -> str:
    codes = ",".join(inc.get("codes") or [])
    cause = inc.get("root_cause") or (inc.get("diagnosis") or {}).get("root_cause") or "-"
    outcome = inc.get("outcome") or None
    fix = "" if not outcome else (" fix=worked" if outcome.get("worked") else " fix=failed")
    score = f" score={inc['score']:.3f}" if isinstance(inc.get("score"), float) else ""
    return (f"{inc.get('id')} {inc.get('status', '-'):8} {_when(inc.get('opened_at'))} {inc.get('target')} "
            f"[{codes}] cause={cause}{fix}{score}")


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")

    @app.command()
    def recall(
        query: Annotated[str, typer.Argument(metavar="QUERY", help="free text, e.g. 'KV cache full on llama'")],
        target: Annotated[str | None, typer.Option(metavar="URL", help="only incidents on this target URL")] = None,
        engine: Annotated[str | None, typer.Option(metavar="ENGINE",
                                                   help="only incidents on this engine (vllm-v1, sglang, ...)")] = None,
        limit: Annotated[int, typer.Option(metavar="N", min=1, max=100, help="most results")] = 5,
        as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
    ) -> None:
        """Past incidents most like QUERY, best first, from the backend serving recall (`inferguard config
        show`): Upstash Vector when configured, else the embedded store (FTS5 BM25). When Upstash Vector
        does not answer, the embedded store answers and one line on stderr says why."""
        hits, memory = with_memory(lambda m: m.recall(query, target=target, engine=engine, limit=limit))
        _say_fallback(memory, memory.vector.name if memory.vector is not None else None)
        if as_json:
            typer.echo(json.dumps(hits))
            return
        if not hits:
            typer.echo("no similar incidents remembered")
        for h in hits:
            typer.echo(_line(h))


@incidents_app.command("list")
def list_incidents(
    open_only: Annotated[bool, typer.Option("--open", help="only incidents still open")] = False,
    target: Annotated[str | None, typer.Option(metavar="URL", help="only incidents on this target URL")] = None,
    since: Annotated[str | None, typer.Option(metavar="DURATION",
                                              help="only incidents active within this long, e.g. 2h")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=1, help="most results")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print the incidents as JSON")] = False,
) -> None:
    """Remembered incidents, newest first, from the backend serving state (`inferguard config show`):
    Redis or Upstash Redis when configured, else the embedded store. When the remote does not answer,
    the embedded store answers and one line on stderr says why."""
    after = None if since is None else time.time() - parse_since(since)
    found, memory = with_memory(lambda m: m.list_incidents(open_only=open_only, target=target, since=after,
                                                           limit=limit))
    _say_fallback(memory, _state(memory))
    if as_json:
        typer.echo(json.dumps(found))
        return
    if not found:
        typer.echo("no incidents remembered")
    for inc in found:
        typer.echo(_line(inc))


@incidents_app.command("show")
def show(
    incident_id: Annotated[str, typer.Argument(metavar="ID", help="an incident id from `incidents list`")],
    as_json: Annotated[bool, typer.Option("--json", help="print the incident as JSON")] = False,
) -> None:
    """One incident: its timeline of events and its diagnosis history, from the backend serving state
    (as `incidents list`; the embedded store answers when the remote does not, or does not know it)."""
    inc, memory = with_memory(lambda m: m.get(incident_id))
    _say_fallback(memory, _state(memory))
    if inc is None:
        typer.echo(f"inferguard: no incident {incident_id!r} remembered", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(inc))
        return
    typer.echo(_line(inc))
    typer.echo(f"  engine={inc.get('engine')} model={inc.get('model')} peak={inc.get('peak_severity')}")
    for a in inc.get("anomalies") or []:
        typer.echo(f"  anomaly [{a.get('severity')}] {a.get('code')}: {a.get('summary')}")
    typer.echo("  timeline:")
    for ev in inc.get("timeline") or []:
        typer.echo(f"    {_when(ev.get('ts'))} {ev.get('event')} {', '.join(ev.get('changes') or [])}")
    typer.echo("  diagnoses:")
    for d in inc.get("diagnoses") or []:
        typer.echo(f"    {_when(d.get('ts'))} {d.get('root_cause')} "
                   f"({d.get('source')}, confidence {d.get('confidence')})")
    for adv in inc.get("advisories") or []:
        typer.echo(f"  advisory: {adv.get('action')} {'; '.join(adv.get('engine_steps') or [])}")
    if inc.get("outcome"):
        o = inc["outcome"]
        typer.echo(f"  fix {'worked' if o.get('worked') else 'failed'} ({o.get('source')}): {o.get('note') or ''}")
    typer.echo(f"  signal samples kept: {len(inc.get('window') or [])}")


@incidents_app.command("note")
def note(
    incident_id: Annotated[str, typer.Argument(metavar="ID", help="an incident id")],
    worked: Annotated[bool | None, typer.Option("--worked/--failed", help="did the fix work?")] = None,
    text: Annotated[str, typer.Option("--note", metavar="TEXT", help="what was done")] = "",
) -> None:
    """Remember whether the fix for an incident worked (recall shows it next time)."""
    if worked is None:
        typer.echo("inferguard: say --worked or --failed", err=True)
        raise typer.Exit(EXIT_USAGE)
    found, memory = with_memory(lambda m: m.note(incident_id, worked=worked, note=text))
    backends = memory.backends
    for name, reason in memory.degraded.items():
        typer.echo(f"inferguard: {name} did not answer ({reason}); the note is kept in the embedded store and "
                   "sent to it when InferGuard next reaches it", err=True)
    if not found:
        typer.echo(f"inferguard: no incident {incident_id!r} remembered", err=True)
        raise typer.Exit(1)
    typer.echo(f"{incident_id}: fix {'worked' if worked else 'failed'} (remembered in {backends['state']})")
