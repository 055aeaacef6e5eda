"""The `inferguard` command line. Thin: parse arguments, load Settings, call :mod:`inferguard.runtime`.

Imports no stage; every failure becomes an exit code in one place (:func:`inferguard.exitcodes.fail`)."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from dotenv import dotenv_values

from inferguard import __version__
from inferguard.alerting_cli import actions_app, probe, replay_notify, silence_app
from inferguard.cli_help import SETTING_DEFAULTS, ReadableGroup
from inferguard.cli_memory import register as register_memory_commands
from inferguard.cli_oneshot import load_settings
from inferguard.config import MAX_DURATION_S, MAX_INTERVAL_S, MIN_INTERVAL_S, Settings, check_number
from inferguard.errors import ConfigError, InferGuardError, OutputError
from inferguard.exitcodes import EXIT_UNAVAILABLE, EXIT_USAGE, fail
from inferguard.models import Scrape, Target, describe_scrape_failure
from inferguard.progress import RecordProgress
from inferguard.protocols import Sink
from inferguard.runtime import oneshot
from inferguard.runtime.build import build_daemon, check_thresholds
from inferguard.runtime.daemon import Daemon, DaemonOptions
from inferguard.runtime.flow import dumps
from inferguard.startup import ineffective_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, cls=ReadableGroup,
                  help="Catch, explain and advise on incidents in vLLM and SGLang serving engines.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect configuration.")
app.add_typer(config_app, name="config")
register_memory_commands(app)
app.add_typer(silence_app, name="silence")
app.add_typer(actions_app, name="actions")
app.command("probe")(probe)


def _effective(read: Callable[[Settings], object], unit: str, name: str) -> Callable[[], str]:
    """Help text for a default that comes from a setting: the value in force and where it came from."""
    def text() -> str:
        try:
            value = read(Settings.load())
        except ConfigError:
            return f"{name}, which is invalid"
        is_set = name in os.environ or name in dotenv_values(".env")
        return f"{value}{unit}, " + (f"from {name}" if is_set else f"{name} unset")
    return text


SETTING_DEFAULTS["watch.interval"] = _effective(lambda s: f"{s.targets.poll_interval_seconds:g}", " s",
                                                "POLL_INTERVAL_SECONDS")
SETTING_DEFAULTS["watch.listen"] = _effective(lambda s: s.server.listen, "", "INFERGUARD_LISTEN")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"inferguard {__version__} (Python {sys.version.split()[0]})")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Catch, explain and advise on incidents in vLLM and SGLang serving engines."""

SCENARIO_HELP = ("healthy, kv_pressure, admission_overload, prefix_thrash, swap, engine_crash, ttft_regression, "
                 "spec_decode_collapse, gpu_fault")


def _number(name: str, value: float, low: float, high: float, low_inclusive: bool = True) -> float:
    try:
        return check_number(name, value, low=low, high=high, low_inclusive=low_inclusive)
    except ConfigError as exc:
        raise fail(exc) from None


def _settings(*, warn: bool = True) -> Settings:
    settings = load_settings()
    if warn:  # the daemon logs these itself, as `settings.ignored` events
        for name, why in ineffective_settings():
            typer.echo(f"inferguard: warning: {name} is set but has no effect: {why}", err=True)
    return settings


def _targets(settings: Settings, urls: list[str] | None) -> list[Target]:
    try:
        targets = settings.target_list(urls)
    except ConfigError as exc:
        raise fail(exc) from None
    if not targets:
        typer.echo("inferguard: no targets: pass URLs or set TARGET_ENDPOINT / INFERGUARD_TARGETS_FILE", err=True)
        raise typer.Exit(EXIT_USAGE)
    return targets


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, every secret redacted (validated as `watch` validates them)."""
    settings = _settings()
    try:
        check_thresholds(settings.target_list(None))  # the targets file too, as `watch` reads it
    except ConfigError as exc:
        raise fail(exc) from None
    typer.echo(json.dumps(settings.redacted(), indent=2))


@app.command()
def scan(
    url: Annotated[str, typer.Argument(metavar="URL", show_default=False,
                                       help="the engine's /metrics URL (a URL with no path means /metrics)")],
    window: Annotated[float, typer.Option(metavar="SECONDS", help="seconds between scrapes")] = 5.0,
    samples: Annotated[int, typer.Option(metavar="N", min=1, max=1000, help=(
        "scrapes to take; 6 or more (at the default thresholds) also judges TTFT, ITL, prefix-cache and "
        "speculative-decoding regressions against a baseline learned from the first ones"))] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as JSON")] = False,
) -> None:
    """One look: a few scrapes and a verdict. Exit 0 healthy, 1 warning, 2 critical, 3 no metrics read."""
    _number("--window", window, 0.0, MAX_INTERVAL_S, low_inclusive=False)
    settings = _settings()
    target = _targets(settings, [url])[0]
    result = anyio.run(oneshot.scan, settings, target, window, samples)
    code = result["exit_code"]
    if as_json:
        typer.echo(dumps(result))
        raise typer.Exit(code)
    if result["error"]:
        typer.echo(f"UNREACHABLE: {target.url}: {result['error_detail']}")
        raise typer.Exit(code)
    typer.echo(f"{result['verdict'].upper()}: {target.url} ({result['engine']}), "
               f"{result['samples']} scrape(s) {window:g} s apart")
    for f in result["anomalies"]:
        typer.echo(f"  [{f['severity']}] {f['code']}: {f['summary']}")
    d = result["diagnosis"]
    if d:
        typer.echo(f"  diagnosis: {d['root_cause']} ({d['source']}, confidence {d['confidence']:.2f}): {d['summary']}")
    for a in result["advisories"]:
        steps = "; ".join(a.get("engine_steps", []))
        typer.echo(f"  advice: {a['action']} ({a['horizon']}){': ' + steps if steps else ''}")
    whys: dict[str, list[str]] = {}
    for n in result["not_judged"]:
        whys.setdefault(n["why"], []).append(n["code"])
    for why, codes in whys.items():
        typer.echo(f"  not judged: {', '.join(codes)}: {why}")
    raise typer.Exit(code)


@app.command()
def watch(
    urls: Annotated[list[str] | None, typer.Argument(
        metavar="URL", show_default=False,
        help="engines' /metrics URLs, no path meaning /metrics (default: TARGET_ENDPOINT, and the targets in "
             "INFERGUARD_TARGETS_FILE)",
    )] = None,
    interval: Annotated[float | None, typer.Option(
        metavar="SECONDS", help="seconds between scrapes of each target")] = None,
    listen: Annotated[str | None, typer.Option(
        metavar="HOST:PORT", help="where to serve /metrics, /healthz, /readyz and /api")] = None,
    no_listen: Annotated[bool, typer.Option("--no-listen", help="serve nothing")] = False,
    record: Annotated[Path | None, typer.Option(metavar="FILE", help="also write every scrape to this timeline "
                                                                     "(.jsonl or .jsonl.gz)")] = None,
    duration: Annotated[float | None, typer.Option(
        metavar="SECONDS", help="stop after this many seconds (default: run until stopped)")] = None,
) -> None:
    """The daemon: scrape, detect, diagnose, report. SIGTERM/SIGINT stop it cleanly."""
    if interval is not None:
        _number("--interval", interval, MIN_INTERVAL_S, MAX_INTERVAL_S)
    if duration is not None:
        _number("--duration", duration, 0.0, MAX_DURATION_S, low_inclusive=False)
    settings = _settings(warn=False)
    targets = _targets(settings, urls)
    options = DaemonOptions(interval_s=interval if interval is not None else settings.targets.poll_interval_seconds,
                            listen=None if no_listen else (listen or settings.server.listen),
                            record=str(record) if record else None, duration_s=duration,
                            log_format=settings.server.log_format)
    tty = sys.stdout.isatty() and settings.server.log_format != "json"
    if tty:
        options.log_level = logging.ERROR  # the live view shows cycles and incidents itself
    if tty:
        from inferguard.view import LiveView

        with LiveView() as view:
            summary = _run(_build(settings, targets, options, view))
        typer.echo("inferguard watch stopped: " + " ".join(f"{k}={v}" for k, v in summary.items()))
    else:
        _run(_build(settings, targets, options, None))


def _run(daemon: Daemon) -> dict[str, Any]:
    try:
        result: dict[str, Any] = anyio.run(daemon.run)
    except ConfigError as exc:  # bad memory credentials surface when the daemon first uses the backend
        raise fail(exc) from None
    return result


def _build(settings: Settings, targets: list[Target], options: DaemonOptions, view: Sink | None) -> Daemon:
    try:
        return build_daemon(settings, targets, options, view=view)
    except (ConfigError, OutputError) as exc:  # OutputError: --record to a path that cannot be written
        raise fail(exc) from None


@app.command()
def serve(
    urls: Annotated[list[str] | None, typer.Argument(
        metavar="URL", show_default=False, help="/metrics URLs to watch (default: TARGET_ENDPOINT)")] = None,
    transport: Annotated[str, typer.Option(metavar="NAME", help="stdio or streamable-http")] = "stdio",
    host: Annotated[str, typer.Option(metavar="ADDRESS",
                                      help="address for streamable-http (loopback unless a token is set)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port for streamable-http")] = 8766,
    interval: Annotated[float | None, typer.Option(
        metavar="SECONDS", help="seconds between scrapes (default: POLL_INTERVAL_SECONDS)")] = None,
) -> None:
    """An MCP server with read-only tools (scan, incidents, recall, explain, advisories) over a watcher."""
    from inferguard.api.listen import Bind, check_bind
    from inferguard.mcp_server import build_server, run

    settings = _settings()
    if transport not in ("stdio", "streamable-http"):
        typer.echo(f"inferguard serve: invalid --transport {transport!r}: stdio or streamable-http", err=True)
        raise typer.Exit(EXIT_USAGE)
    if not 0 < port < 65536 or (interval is not None and not (math.isfinite(interval) and interval > 0)):
        typer.echo("inferguard serve: invalid --port or --interval", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        targets = settings.target_list(urls)
        token = settings.server.api_token.get_secret_value() if settings.server.api_token else None
        bind = None
        if transport == "streamable-http":
            bind = Bind(host.strip("[]"), port)
            check_bind(bind, token is not None, "--host")
        # Logs go to stderr: on stdio, stdout is the protocol's channel.
        options = DaemonOptions(interval_s=interval or settings.targets.poll_interval_seconds, listen=None,
                                log_format="json", out=sys.stderr)
        daemon = build_daemon(settings, targets, options, outputs=False)  # pages nobody: `watch` does
    except ConfigError as exc:
        raise fail(exc) from None
    server = build_server(daemon, lambda target, window: oneshot.scan(settings, target, window))
    try:
        anyio.run(run, daemon, server, transport, bind, token, settings.server.api_allowed_hosts)
    except OSError as exc:
        where = bind.address if bind else "stdio"
        typer.echo(f"inferguard serve: cannot listen on {where}: {exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None


@app.command()
def record(
    url: Annotated[str, typer.Argument(metavar="URL", show_default=False,
                                       help="the engine's /metrics URL (a URL with no path means /metrics)")],
    out: Annotated[Path, typer.Option("--out", metavar="FILE", show_default=False,
                                      help="timeline file (.jsonl, or .jsonl.gz)")],
    interval: Annotated[float, typer.Option(metavar="SECONDS", help="seconds between scrapes")] = 5.0,
    duration: Annotated[float, typer.Option(metavar="SECONDS", help="seconds to record")] = 60.0,
) -> None:
    """Write a timeline of scrapes (one JSON object per line) for `replay` and tests. SIGTERM/SIGINT stop it
    cleanly: every line written so far stays readable."""
    _number("--interval", interval, MIN_INTERVAL_S, MAX_INTERVAL_S)
    _number("--duration", duration, 0.0, MAX_DURATION_S, low_inclusive=False)
    settings = _settings()
    target = _targets(settings, [url])[0]
    progress = RecordProgress(duration, sys.stderr, tty=sys.stderr.isatty())
    banner = [f"recording {target.url} every {interval:g} s for {duration:g} s to {out}"]

    def heard(scrape: Scrape) -> None:
        if banner:  # said once the file is open and the first scrape is in, so a bad --out is one line
            typer.echo(banner.pop(), err=True)
        failed = scrape.error and describe_scrape_failure(scrape.error, scrape.status, target.url, scrape.detail)
        progress.scraped(failed or "")

    try:
        n = anyio.run(oneshot.record, settings, target, out, interval, duration, heard)
    except OutputError as exc:
        raise fail(exc) from None
    finally:
        progress.close()
    failed = f", {progress.failures} failed (last: {progress.last_failure})" if progress.failures else ""
    typer.echo(f"recorded {n} scrapes to {out}{failed}", err=True)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(metavar="FILE", show_default=False,
                                         help="a timeline written by `record` or `watch --record`")],
    as_json: Annotated[bool, typer.Option("--json", help='print {"incidents": [...]} and nothing else')] = False,
    remember: Annotated[bool, typer.Option("--remember", help="record the incidents into incident memory")] = False,
    notify: Annotated[bool, typer.Option("--notify", help="send the notifications the incidents would have sent")]
    = False,
    payloads: Annotated[Path | None, typer.Option(
        "--payloads", metavar="DIR", help="also write each brain payload to DIR as <incident>-<n>.json, "
                                          "for `rlm-agent advise DIR`")] = None,
) -> None:
    """Run the same pipeline offline over a recorded timeline, on the recorded clock."""
    settings = _settings()
    if notify:
        result = replay_notify(file, settings)
        if as_json:
            typer.echo(dumps(result))
        else:
            typer.echo(f"{len(result['incidents'])} incident(s); notifications: "
                       + " ".join(f"{k}={v}" for k, v in result["notify"].items())
                       + f" waiting={len(result['waiting'])}")
        return
    try:
        events: list[dict[str, Any]] = []
        built: list[dict[str, Any]] = []
        incidents = oneshot.replay(file, settings, events=events if remember else None,
                                   payloads=built if payloads is not None else None,
                                   warn=lambda message: typer.echo(f"inferguard: warning: {message}", err=True))
        if payloads is not None:
            written = oneshot.write_payloads(built, payloads)
            typer.echo(f"wrote {len(written)} payload(s) to {payloads}", err=True)
        if remember:
            kept = anyio.run(oneshot.remember, settings, events)
            where = kept["backends"]
            typer.echo(f"remembered {len(incidents)} incident(s), {len(events)} event(s) "
                       f"(state: {where['state']}, recall: {where['recall']})", err=True)
            for name, n in kept["spooled"].items():
                reason = " ".join(kept["degraded"].get(name, "still catching up").split())
                typer.echo(f"inferguard: warning: {name} did not answer ({reason}); {n} write(s) kept in the "
                           "embedded store's spool, sent when InferGuard next reaches it", err=True)
    except InferGuardError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(dumps({"incidents": incidents}))
        return
    if not incidents:
        typer.echo("no incidents")
    for inc in incidents:
        codes = ", ".join(inc["codes"])
        state = "open" if inc["resolved_at"] is None else f"resolved after {inc['resolved_at'] - inc['opened_at']:.0f}s"
        cause = (inc.get("diagnosis") or {}).get("root_cause", "-")
        typer.echo(f"{inc['id']} {inc['peak_severity']:8} {inc['target']} [{codes}] cause={cause} {state}")


@app.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help='print only {"incidents": [...]} at the end')] = False,
    fault: Annotated[float, typer.Option(metavar="SECONDS", min=1.0,
                                         help="seconds of injected KV-cache pressure")] = 25.0,
) -> None:
    """Watch a simulated engine through one incident: detection, diagnosis, advisories, resolution (~1 min)."""
    from rich.console import Console

    from inferguard.demo import run_demo

    console = None if as_json else Console()
    incidents = anyio.run(lambda: run_demo(fault_s=fault, console=console))
    if as_json:
        typer.echo(dumps({"incidents": incidents}))
        return
    assert console is not None
    resolved = sum(1 for i in incidents if i["resolved_at"] is not None)
    console.print(f"\n[bold]{len(incidents)} incident(s), {resolved} resolved.[/] Same pipeline as `inferguard watch`; "
                  "try `inferguard simulate --scenario admission_overload` and watch it yourself.")


@app.command()
def simulate(
    dialect: Annotated[str, typer.Option(metavar="NAME", help="vllm-v1, vllm-v0, sglang or dcgm")] = "vllm-v1",
    scenario: Annotated[str, typer.Option(metavar="NAME", help=SCENARIO_HELP)] = "healthy",
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port (0 = any free port)")] = 8000,
    targets: Annotated[int, typer.Option(metavar="N", help="simulated engines served from this process")] = 1,
    model: Annotated[str, typer.Option(metavar="NAME",
                                       help="model name the engines report")] = "sim/llama-3-8b-instruct",
    seed: Annotated[int, typer.Option(metavar="N", help="random seed")] = 0,
    speed: Annotated[float, typer.Option(metavar="FACTOR", help="simulated seconds per real second")] = 1.0,
) -> None:
    """An OpenAI-compatible engine simulator whose /metrics speak vLLM V1/V0, SGLang or DCGM (synthetic data)."""
    from inferguard.simulate.cli import simulate_command

    try:
        code = simulate_command(host=host, port=port, dialect=dialect, scenario=scenario, targets=targets,
                                model=model, seed=seed, speed=speed)
    except ConfigError as exc:
        raise fail(exc, "inferguard simulate") from None
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
