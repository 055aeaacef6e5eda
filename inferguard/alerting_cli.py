"""`inferguard silence …` and `inferguard replay --notify`: thin commands over inferguard.sinks."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from inferguard.actuation import audit_log
from inferguard.cli_oneshot import load_settings, run, with_memory
from inferguard.config import Settings
from inferguard.errors import ConfigError, MemoryBackendError
from inferguard.exitcodes import EXIT_USAGE
from inferguard.memory.store import Memory
from inferguard.probes import LocalProbe
from inferguard.protocols import StateStore
from inferguard.runtime.build import build_actuator, build_local_store, build_notifier, build_probe
from inferguard.runtime.oneshot import replay_outputs
from inferguard.sinks import add_silence, expire_silence, list_silences
from inferguard.testing import FakeClock
from inferguard.urls import redact_urls

silence_app = typer.Typer(no_args_is_help=True, help="Silence notifications for a target and anomaly code.")
actions_app = typer.Typer(no_args_is_help=True, help="The actuation audit log.")
T = TypeVar("T")


# Where each remote state backend is configured, for the error that names it.
STATE_SETTING = {"redis": "INFERGUARD_REDIS_URL", "upstash": "UPSTASH_REDIS_REST_URL"}
SETTLE_S = 5.0  # how long a command waits for its write to reach the remote state backend


def _unreachable(memory: Memory, command: str, outcome: str) -> MemoryBackendError | None:
    """The error for a state backend that did not answer (at start, on a read or a write), or None."""
    state = memory.state
    if state is None:
        return None
    reason = memory.degraded.get(state.name) or memory.fallbacks.get(state.name)
    if reason is None and not memory.spooled.get(state.name):
        return None
    why = " ".join(redact_urls(reason or "writes to it are still waiting here").split())[:300]
    return MemoryBackendError(f"{command}: the state backend {state.name} ({STATE_SETTING.get(state.name, '?')}) "
                              f"did not answer: {why}; {outcome}")


def _with_store(command: str, use: Callable[[StateStore], Awaitable[T]], *, writes: bool = False) -> T:
    """Run ``use`` on the configured memory's state, the StateStore the daemon's notifier and actuator use
    (Redis or Upstash Redis when configured, else the embedded store). Unlike the daemon, a command does not
    carry on without the remote: the daemon would not see what it wrote, so it fails, naming the backend."""

    async def checked(memory: Memory) -> T:
        await memory.start()
        before = _unreachable(memory, command, "nothing was changed" if writes else "nothing was read")
        if before is not None:
            raise before
        result = await use(memory)
        if writes:
            await memory.settle(SETTLE_S)
        after = _unreachable(memory, command, "the change is kept in the embedded store and sent when "
                             "InferGuard next reaches it; until then the daemon does not see it" if writes
                             else "what the daemon holds may differ")
        if after is not None:
            raise after
        return result

    # A bad argument found late is still a usage error (64); a state backend that did not answer is 70.
    return with_memory(checked, default=EXIT_USAGE)[0]


@silence_app.command("add")
def silence_add(
    target: Annotated[str, typer.Option(metavar="TARGET", help="target URL or name; a glob (http://vllm-*, *)")],
    code: Annotated[str, typer.Option(metavar="CODE", help="anomaly code such as kv_pressure; a glob, or * for all")],
    for_: Annotated[str, typer.Option("--for", metavar="DURATION", help="how long: 90s, 30m, 2h, 1d")],
    comment: Annotated[str, typer.Option(metavar="TEXT", help="why (shown in `silence list`)")],
) -> None:
    """Stop notifications about CODE on TARGET for a while (the resolve of an announced incident still goes out)."""
    sil = _with_store("silence add", lambda store: add_silence(store, target=target, code=code, duration=for_,
                                                               comment=comment, now=time.time()), writes=True)
    typer.echo(json.dumps(sil))


@silence_app.command("list")
def silence_list(
    all_: Annotated[bool, typer.Option("--all", help="include expired silences")] = False,
) -> None:
    """Active silences as JSON lines (with --all, the expired ones of the last week too)."""
    for s in _with_store("silence list", lambda store: list_silences(store, time.time(), include_expired=all_)):
        typer.echo(json.dumps(s))


@silence_app.command("expire")
def silence_expire(silence_id: Annotated[str, typer.Argument(metavar="ID", help="the silence's id (sil-…)")]) -> None:
    """End a silence now."""
    typer.echo(json.dumps(_with_store("silence expire", lambda store: expire_silence(store, silence_id, time.time()),
                                  writes=True)))


@actions_app.command("list")
def actions_list(
    limit: Annotated[int, typer.Option(metavar="N", help="newest entries to show")] = 50,
) -> None:
    """Every actuation decision, oldest first, as JSON lines: denied (and why), dry_run, sent, failed, verified."""
    for entry in _with_store("actions list", lambda store: audit_log(store, limit)):
        typer.echo(json.dumps(entry))


def probe(
    url: Annotated[str, typer.Argument(metavar="URL", help="the engine's API (or /metrics) URL")],
    model: Annotated[str | None, typer.Option(metavar="MODEL", help="model (default: the first listed)")] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=1000, metavar="N", help="probes to run, one after another")] = 1,
    mode: Annotated[str, typer.Option(metavar="MODE", help="chat or completion")] = "chat",
) -> None:
    """Canary: N measured streaming requests; one JSON line each (ok, status, ttft_s, tpot_s, tokens, error,
    ran). Exit 1 when any failed or did not run."""
    if mode not in ("chat", "completion"):
        typer.echo("inferguard probe: --mode is chat or completion", err=True)
        raise typer.Exit(EXIT_USAGE)
    settings = load_settings()
    p = build_probe(settings, model=model)
    if isinstance(p, LocalProbe):
        p.mode = mode
    else:
        p.local.mode = mode

    async def go() -> list[dict[str, Any]]:
        return [await p.probe(url) for _ in range(n)]

    results = run(go, default=EXIT_USAGE)
    for r in results:
        typer.echo(json.dumps(r))
    if not all(r["ok"] and r["ran"] for r in results):
        raise typer.Exit(1)


def replay_notify(file: Path, settings: Settings) -> dict[str, Any]:
    """Replay FILE sending what its incidents would have sent (and, under the actuation settings, the
    actions); returns the incidents, delivery counts, what still waits and the actuation decisions."""

    async def go() -> dict[str, Any]:
        clock = FakeClock(0.0)
        store = build_local_store(settings)
        try:
            notifier = build_notifier(settings, store, clock=clock)
            actuator = build_actuator(settings, store, clock=clock)
            if notifier is None and actuator is None:
                raise ConfigError("INFERGUARD_SLACK_WEBHOOK_URL", "--notify needs a sink: set a Slack, webhook or "
                                  "Alertmanager URL (or INFERGUARD_ACTUATION_MODE)")
            try:
                pipeline = await replay_outputs(file, settings, clock, notifier=notifier, actuator=actuator)
            finally:
                if notifier is not None:
                    await notifier.aclose()
                if actuator is not None:
                    await actuator.aclose()
            actions = [a | {"incident": i.id} for i in pipeline.book.history for a in i.actions]
            return {"incidents": [i.to_dict() for i in pipeline.book.history],
                    "notify": dict(notifier.counts) if notifier else {},
                    "waiting": notifier.pending() if notifier else [], "actions": actions}
        finally:
            await store.aclose()

    return dict(run(go, default=EXIT_USAGE))
