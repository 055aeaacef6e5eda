"""The `inferguard` command line. Thin: parse arguments, build Settings, call the app."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from inferguard.app import Daemon, DaemonOptions, dumps
from inferguard.brain import rules_advisor
from inferguard.cli_memory import register as register_memory_commands
from inferguard.config import Settings
from inferguard.errors import ConfigError, InferGuardError
from inferguard.models import SEVERITY_RANK, Target
from inferguard.pipeline import Pipeline
from inferguard.sources.http import HttpScraper
from inferguard.sources.timeline import TimelineWriter, read_timeline

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Catch, explain and advise on incidents in vLLM and SGLang serving engines.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect configuration.")
app.add_typer(config_app, name="config")
register_memory_commands(app)

SCENARIO_HELP = ("healthy, kv_pressure, admission_overload, prefix_thrash, swap, engine_crash, ttft_regression, "
                 "spec_decode_collapse, gpu_fault")
EXIT_HEALTHY, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNREACHABLE = 0, 1, 2, 3


def _settings() -> Settings:
    try:
        return Settings.load()
    except ConfigError as exc:
        typer.echo(f"inferguard: invalid setting {exc}", err=True)
        raise typer.Exit(64) from None


def _targets(settings: Settings, urls: list[str] | None) -> list[Target]:
    try:
        targets = settings.target_list(urls)
    except ConfigError as exc:
        typer.echo(f"inferguard: invalid setting {exc}", err=True)
        raise typer.Exit(64) from None
    if not targets:
        typer.echo("inferguard: no targets: pass URLs or set TARGET_ENDPOINT / INFERGUARD_TARGETS_FILE", err=True)
        raise typer.Exit(64)
    return targets


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, every secret redacted."""
    typer.echo(json.dumps(_settings().redacted(), indent=2))


@app.command()
def scan(
    url: Annotated[str, typer.Argument(help="the engine's /metrics URL")],
    window: Annotated[float, typer.Option(help="seconds between the two scrapes")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as JSON")] = False,
) -> None:
    """One look: two scrapes WINDOW apart and a verdict. Exit 0 healthy, 1 warning, 2 critical, 3 unreachable."""
    settings = _settings()
    target = _targets(settings, [url])[0]
    result = anyio.run(_scan, settings, target, window)
    code = result["exit_code"]
    if as_json:
        typer.echo(dumps(result))
    else:
        typer.echo(f"{result['verdict'].upper()}: {target.url} ({result['engine']})")
        for f in result["anomalies"]:
            typer.echo(f"  [{f['severity']}] {f['code']}: {f['summary']}")
        d = result["diagnosis"]
        if d:
            typer.echo(f"  diagnosis: {d['root_cause']} ({d['source']}, confidence {d['confidence']:.2f}) "
                       f"{d['summary']}")
        for a in result["advisories"]:
            steps = "; ".join(a.get("engine_steps", []))
            typer.echo(f"  advisory (advice only): {a['action']} [{a['horizon']}] {steps}")
        if result.get("error"):
            typer.echo(f"  scrape failed: {result['error']}")
    raise typer.Exit(code)


async def _scan(settings: Settings, target: Target, window: float) -> dict[str, Any]:
    # A single look cannot wait out persistence: judge each condition on the second scrape directly.
    cfg = dataclasses.replace(settings.detect.detector_config(), fire_after=1, unreachable_after=1)
    pipeline = Pipeline([target], config=cfg, advisor=rules_advisor)
    scraper = HttpScraper(timeout_s=settings.scrape.timeout_seconds, max_body_bytes=settings.scrape.max_body_bytes)
    try:
        first = pipeline.observe(await scraper.scrape(target))
        if first.error is None:
            await anyio.sleep(window)
            obs = pipeline.observe(await scraper.scrape(target))
        else:
            obs = first
    finally:
        await scraper.aclose()
    anomalies = [f.to_dict() | {"code": f.code, "model": f.model} for f in obs.findings]
    worst = max((SEVERITY_RANK[f.severity] for f in obs.findings), default=0)
    if obs.error is not None:
        verdict, code = "unreachable", EXIT_UNREACHABLE
    else:
        verdict = ("healthy", "warning", "critical")[worst]
        code = (EXIT_HEALTHY, EXIT_WARNING, EXIT_CRITICAL)[worst]
    signals = {s.model: dict(s.values) for s in obs.signals}
    incident = next((i for i in pipeline.book.open_incidents() if i.target == target.url), None)
    return {"target": target.url, "verdict": verdict, "exit_code": code, "engine": obs.engine,
            "error": obs.error, "anomalies": anomalies, "signals": signals,
            "diagnosis": incident.diagnosis if incident else None,
            "advisories": incident.advisories if incident else []}


@app.command()
def watch(
    urls: Annotated[list[str] | None, typer.Argument(help="/metrics URLs (default: TARGET_ENDPOINT)")] = None,
    interval: Annotated[float | None, typer.Option(help="seconds between scrapes")] = None,
    listen: Annotated[str | None, typer.Option(help="host:port for /metrics, /healthz, /readyz, /api")] = None,
    no_listen: Annotated[bool, typer.Option("--no-listen", help="serve nothing")] = False,
    record: Annotated[Path | None, typer.Option(help="also write every scrape to this timeline")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
) -> None:
    """The daemon: scrape, detect, diagnose, report. SIGTERM/SIGINT stop it cleanly."""
    settings = _settings()
    targets = _targets(settings, urls)
    options = DaemonOptions(interval_s=interval or settings.targets.poll_interval_seconds,
                            listen=None if no_listen else (listen or settings.server.listen),
                            record=str(record) if record else None, duration_s=duration,
                            log_format=settings.server.log_format)
    tty = sys.stdout.isatty() and settings.server.log_format != "json"
    if tty:
        options.log_level = logging.ERROR  # the live view shows cycles and incidents itself
    try:
        daemon = Daemon(settings, targets, options)
    except ConfigError as exc:
        typer.echo(f"inferguard: invalid setting {exc}", err=True)
        raise typer.Exit(64) from None
    if tty:
        from inferguard.view import LiveView

        with LiveView() as view:
            daemon.view = view
            summary = anyio.run(daemon.run)
        typer.echo("inferguard watch stopped: " + " ".join(f"{k}={v}" for k, v in summary.items()))
    else:
        anyio.run(daemon.run)


@app.command()
def record(
    url: Annotated[str, typer.Argument(help="the engine's /metrics URL")],
    out: Annotated[Path, typer.Option("--out", help="timeline file (.jsonl, or .jsonl.gz)")],
    interval: Annotated[float, typer.Option(help="seconds between scrapes")] = 5.0,
    duration: Annotated[float, typer.Option(help="seconds to record")] = 60.0,
) -> None:
    """Write a timeline of scrapes (one JSON object per line) for `replay` and tests."""
    settings = _settings()
    target = _targets(settings, [url])[0]
    n = anyio.run(_record, settings, target, out, interval, duration)
    typer.echo(f"recorded {n} scrapes to {out}", err=True)


async def _record(settings: Settings, target: Target, out: Path, interval: float, duration: float) -> int:
    writer = TimelineWriter(out)
    scraper = HttpScraper(timeout_s=settings.scrape.timeout_seconds, max_body_bytes=settings.scrape.max_body_bytes)
    end = time.monotonic() + duration
    try:
        while True:
            writer.write(await scraper.scrape(target))
            if time.monotonic() + interval > end:
                break
            await anyio.sleep(interval)
    finally:
        await scraper.aclose()
        writer.close()
    return writer.count


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="a timeline written by `record` or `watch --record`")],
    as_json: Annotated[bool, typer.Option("--json", help='print {"incidents": [...]} and nothing else')] = False,
    remember: Annotated[bool, typer.Option("--remember", help="record the incidents into incident memory")] = False,
) -> None:
    """Run the same pipeline offline over a recorded timeline, on the recorded clock."""
    settings = _settings()
    try:
        events: list[dict[str, Any]] = []
        incidents = replay_file(file, settings, events=events if remember else None)
        if remember:
            anyio.run(_remember, settings, events)
            typer.echo(f"remembered {len(incidents)} incident(s), {len(events)} event(s)", err=True)
    except InferGuardError as exc:
        typer.echo(f"inferguard: {exc}", err=True)
        raise typer.Exit(65) from None
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


def replay_file(file: Path, settings: Settings, events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Replay a timeline; with ``events`` given, append every event document (with its signal window)."""
    pipeline = Pipeline(config=settings.detect.detector_config(), advisor=rules_advisor)
    for scrape in read_timeline(file):
        obs = pipeline.observe(scrape)
        if events is not None:
            for ev in obs.events:
                inc = ev.incident
                events.append({**ev.to_dict(), "window": pipeline.window(inc.target, inc.model)})
    return [i.to_dict() for i in sorted(pipeline.book.history, key=lambda i: (i.opened_at, i.id))]


async def _remember(settings: Settings, events: list[dict[str, Any]]) -> None:
    from inferguard.memory.build import open_local

    store = open_local(settings.memory)
    try:
        for ev in events:
            await store.record(ev)
    finally:
        await store.aclose()


@app.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help='print only {"incidents": [...]} at the end')] = False,
    fault: Annotated[float, typer.Option(help="seconds of injected KV-cache pressure")] = 25.0,
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
    dialect: Annotated[str, typer.Option(help="vllm-v1, vllm-v0, sglang or dcgm")] = "vllm-v1",
    scenario: Annotated[str, typer.Option(help=SCENARIO_HELP)] = "healthy",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0 = any free port)")] = 8000,
    targets: Annotated[int, typer.Option(help="simulated engines served from this process")] = 1,
    model: Annotated[str, typer.Option(help="model name the engines report")] = "sim/llama-3-8b-instruct",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 1.0,
) -> None:
    """An OpenAI-compatible engine simulator whose /metrics speak vLLM V1/V0, SGLang or DCGM (synthetic data)."""
    from inferguard.simulate.cli import simulate_command

    try:
        code = simulate_command(host=host, port=port, dialect=dialect, scenario=scenario, targets=targets,
                                model=model, seed=seed, speed=speed)
    except ConfigError as exc:
        typer.echo(f"inferguard simulate: invalid {exc}", err=True)
        raise typer.Exit(64) from None
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
