"""The composition root: the ONLY place that turns :class:`~inferguard.config.Settings` into objects.

One function per kind — :func:`build_scraper`, :func:`detector_config`, :func:`build_pipeline`,
:func:`build_brain`, :func:`build_store`, :func:`build_sinks` (the notifier and the actuator are
sinks), :func:`build_probes` — and :func:`build_daemon` / :func:`build_flow` that put them together.
Adding a sink means one new module under ``inferguard/sinks/`` and one entry in :data:`SINKS`; a
store, probe or actuator likewise touches only its ``build_*`` function here. The daemon and the
one-shot commands never construct a stage themselves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from inferguard.actuation import GateConfig, WebhookActuator, audit_log
from inferguard.api import ApiOptions, Health
from inferguard.brain import Brain, BrainStage
from inferguard.brain import build_brain as _client
from inferguard.config import Settings
from inferguard.detectors import DetectorConfig
from inferguard.errors import ConfigError
from inferguard.incidents import IncidentBook
from inferguard.logs import configure
from inferguard.memory.sqlite import SqliteStore
from inferguard.memory.store import Memory
from inferguard.models import Target
from inferguard.pipeline import PageLimits, Pipeline
from inferguard.probes import DaytonaProbe, LocalProbe
from inferguard.protocols import IncidentStore, Probe, Sink, StateStore
from inferguard.runtime import allocator
from inferguard.runtime.actuate import ActuationLane, book_recorder, latest_reader
from inferguard.runtime.daemon import Daemon, DaemonOptions, Parts
from inferguard.runtime.fanout import Fanout
from inferguard.runtime.flow import Flow
from inferguard.runtime.probing import ProbeRun, probe_runner
from inferguard.sinks import (
    AlertmanagerChannel,
    Channel,
    Notifier,
    PolicyConfig,
    SlackBotChannel,
    SlackWebhookChannel,
    WebhookChannel,
    parse_endpoints,
)
from inferguard.sinks.log import LogSink
from inferguard.sinks.readmodel import ReadModel
from inferguard.sources.http import HttpScraper
from inferguard.sources.timeline import TimelineWriter
from inferguard.startup import ineffective_settings, startup_fields, unused_outputs
from inferguard.telemetry import Telemetry, target_label_names
from inferguard.testing import MemoryStore

# How long the scrape loop waits on the incident store per call before it carries on without it.
STORE_TIMEOUT_S = 2.0
# Resolved incidents the daemon keeps in the process (its API's list is bounded alike); memory has all.
KEEP_RESOLVED = 1000
# The notifier's and the actuator's clock-driven work (repeats, re-sends, retries, verifications) runs
# every scrape interval, at least this often: their own timers are seconds to hours.
TICK_MAX_S = 5.0
TICK_MIN_S = 0.5  # each tick saves the notifier's state: not more often than this, however fast the scrapes
# A verification's probe is bounded well inside the daemon's limit on one tick (TICK_LIMIT_S, 120 s), so
# a slow probe is recorded as not run instead of cancelling the verification it belongs to.
VERIFY_PROBE_MAX_S = 60.0


# -- sensing -----------------------------------------------------------------------------------------
def build_scraper(settings: Settings, *, clock: Callable[[], float] = time.time) -> HttpScraper:
    """The one scraper constructor: timeout, body cap, concurrency limit and clock from settings."""
    s = settings.scrape
    return HttpScraper(timeout_s=s.timeout_seconds, max_body_bytes=s.max_body_bytes, concurrency=s.concurrency,
                       clock=clock)


def detector_config(settings: Settings) -> DetectorConfig:
    d = settings.detect
    return DetectorConfig(kv_threshold=d.kv_alert_threshold, ttft_multiplier=d.ttft_alert_multiplier,
                          queue_threshold=d.queue_threshold, preemption_rate=d.preemption_rate,
                          kv_clear=min(DetectorConfig().kv_clear, d.kv_alert_threshold - 0.05))


def check_thresholds(targets: Sequence[Target], config: DetectorConfig | None = None) -> None:
    """Per-target threshold overrides name real thresholds; a typo is a ConfigError naming it."""
    base = config or DetectorConfig()
    for t in targets:
        try:
            base.with_overrides(dict(t.thresholds))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"targets[{t.display}].thresholds", str(exc)) from None


def build_pipeline(settings: Settings, targets: Sequence[Target] = (), *,
                   config: DetectorConfig | None = None, keep_resolved: int | None = None) -> Pipeline:
    """``keep_resolved`` bounds the resolved incidents held in the process (the daemon's; replay keeps all)."""
    config = config or detector_config(settings)
    check_thresholds(targets, config)
    s = settings.scrape
    limits = PageLimits(max_series=s.max_series, max_label_length=s.max_label_length, max_models=s.max_models)
    return Pipeline(list(targets), config=config, limits=limits, book=IncidentBook(keep_resolved=keep_resolved))


# -- the brain ---------------------------------------------------------------------------------------
def build_brain(settings: Settings) -> Brain:
    """Local rlm_agent (with an LLM when a key is set) or the remote ``rlm-agent serve``. The daemon's
    BrainSettings are the one source of LLM settings."""
    b = settings.brain
    llm = b if b.gmi_api_key is not None else None
    if b.brain_mode == "remote":
        llm = b  # only its timeout is read: the remote side has its own LLM settings
    return _client(b.brain_mode, url=b.brain_url, llm=llm)


def build_stage(settings: Settings, brain: Brain | None = None) -> BrainStage:
    return BrainStage(brain or build_brain(settings), max_in_flight=2)


# -- memory, outputs, probes, actuation ------------------------------------------------------------------
def build_store(settings: Settings, *, clock: Callable[[], float] = time.time, log: Any = None,
                quiet: bool = False) -> Memory:
    """The daemon's incident memory: the embedded SQLite store in the state directory, plus Redis or
    Upstash Redis for state and Upstash Vector for recall when configured (docs/memory.md). A backend
    chosen without its settings is a ConfigError now; bad credentials are one at first use (start).
    ``quiet`` (the one-shot commands) logs nothing: a command says once, at the end, what did not
    answer, rather than a warning line per retry."""
    from inferguard.memory.build import open_memory

    if quiet:
        return open_memory(settings.memory, clock=clock, log=_say_nothing)
    warn = None if log is None else (lambda event, **kw: log.warning(event, **kw))
    return open_memory(settings.memory, clock=clock, log=warn)


def _say_nothing(event: str, **fields: Any) -> None:
    pass


def build_local_store(settings: Settings) -> SqliteStore:
    """The embedded store alone, in the state directory: ``replay --notify``'s notification state."""
    from inferguard.memory.build import open_local

    return open_local(settings.memory)


@dataclass
class SinkContext:
    """What a sink factory may use besides settings. ``state`` (the daemon's incident memory, which keeps
    notification and actuation state across restarts) and ``pipeline`` (whose incidents an actuation
    outcome lands on) are None where a sink that needs them cannot run."""

    log: Any
    telemetry: Telemetry
    view: Sink | None = None
    state: StateStore | None = None
    clock: Callable[[], float] = time.time
    pipeline: Pipeline | None = None
    probe: ProbeRun | None = None  # the daemon's canary probe, for post-action verification


SinkFactory = Callable[[Settings, SinkContext], "Sink | None"]


def _notify_sink(settings: Settings, ctx: SinkContext) -> Sink | None:
    return None if ctx.state is None else build_notifier(settings, ctx.state, clock=ctx.clock)


def _actuation_sink(settings: Settings, ctx: SinkContext) -> Sink | None:
    if ctx.state is None or ctx.pipeline is None:
        return None
    actuator = build_actuator(settings, ctx.state, clock=ctx.clock)
    if actuator is None:
        return None
    return ActuationLane(actuator, book_recorder(ctx.pipeline), latest_reader(ctx.pipeline), probe=ctx.probe)


# Every sink by name, in delivery order; a factory returns None when its sink is not configured.
SINKS: dict[str, SinkFactory] = {
    "log": lambda settings, ctx: LogSink(ctx.log),
    "view": lambda settings, ctx: ctx.view,
    "api": lambda settings, ctx: ReadModel(),
    "notify": _notify_sink,  # Slack, webhooks, Alertmanager: when any is configured
    "actuation": _actuation_sink,  # when INFERGUARD_ACTUATION_MODE is not off
}


def build_sinks(settings: Settings, ctx: SinkContext) -> list[Sink]:
    sinks: list[Sink] = []
    for name, factory in SINKS.items():
        sink = factory(settings, ctx)
        if sink is not None:
            if not isinstance(sink, Sink):
                raise ConfigError(f"sinks.{name}", f"{type(sink).__name__} does not implement the Sink protocol")
            sinks.append(sink)
    return sinks


def build_api(settings: Settings, listen: str | None) -> ApiOptions | None:
    """Where the HTTP surface listens and its limits; refuses (ConfigError) a non-loopback address
    without INFERGUARD_API_TOKEN, before anything starts."""
    return ApiOptions.from_settings(settings.server, listen) if listen else None


def build_probes(settings: Settings) -> list[Probe]:
    """The daemon's canary probe, when INFERGUARD_PROBE_EVERY is set; none otherwise."""
    return [build_probe(settings)] if settings.probe.every is not None else []


# -- notifications, actuation, canary probes -----------------------------------------------------------
def build_channels(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> list[Channel]:
    """Every configured notification channel (Slack webhook, Slack bot, webhooks, Alertmanagers)."""
    s = settings.notify
    t = s.notify_timeout_seconds
    out: list[Channel] = []
    if s.slack_webhook_url is not None:
        out.append(SlackWebhookChannel(s.slack_webhook_url.get_secret_value(), public_url=s.public_url,
                                       transport=transport, timeout_s=t))
    if s.slack_bot_token is not None:
        if not s.slack_channel:
            raise ConfigError("INFERGUARD_SLACK_CHANNEL", "required with INFERGUARD_SLACK_BOT_TOKEN")
        out.append(SlackBotChannel(s.slack_bot_token.get_secret_value(), s.slack_channel, public_url=s.public_url,
                                   base_url=s.slack_api_url, timeout_s=t))
    raw = s.webhook_url.get_secret_value() if s.webhook_url else None
    for i, ep in enumerate(parse_endpoints(raw, "INFERGUARD_WEBHOOK_URL")):
        out.append(WebhookChannel(ep, name=f"webhook-{i}", public_url=s.public_url, transport=transport, timeout_s=t))
    raw = s.alertmanager_url.get_secret_value() if s.alertmanager_url else None
    for i, ep in enumerate(parse_endpoints(raw, "INFERGUARD_ALERTMANAGER_URL")):
        out.append(AlertmanagerChannel(ep, name=f"alertmanager-{i}", public_url=s.public_url,
                                       resend_every=s.alertmanager_resend_seconds, transport=transport, timeout_s=t))
    return out


def build_notifier(settings: Settings, store: StateStore, *, clock: Callable[[], float] = time.time,
                   transport: httpx.AsyncBaseTransport | None = None) -> Notifier | None:
    """The notification sink, or None when no channel is configured."""
    s = settings.notify
    channels = build_channels(settings, transport=transport)
    if not channels:
        return None
    return Notifier(channels, store, clock=clock,
                    policy=PolicyConfig(repeat_s=s.notify_repeat_interval_seconds, sustain_s=s.notify_sustain_seconds),
                    rate_per_minute=s.notify_rate_per_minute, max_backoff_s=s.notify_max_backoff_seconds,
                    timeout_s=s.notify_timeout_seconds * 3)


def build_actuator(settings: Settings, store: StateStore, *, clock: Callable[[], float] = time.time,
                   transport: httpx.AsyncBaseTransport | None = None) -> WebhookActuator | None:
    """None when actuation is off: nothing is decided, nothing is sent."""
    s = settings.actuation
    if s.mode == "off":
        return None
    if s.mode == "live":
        if not s.endpoint:
            raise ConfigError("INFERGUARD_ACTUATION_ENDPOINT", "required when INFERGUARD_ACTUATION_MODE=live")
        if s.secret is None or len(s.secret.get_secret_value()) < 16:
            raise ConfigError("INFERGUARD_ACTUATION_SECRET",
                              "required when INFERGUARD_ACTUATION_MODE=live, at least 16 characters")
    if not s.allowed_actions():
        raise ConfigError("INFERGUARD_ACTUATION_ALLOWLIST", f"empty: mode {s.mode} would refuse every action")
    cfg = GateConfig(mode=s.mode, allowlist=s.allowed_actions(), min_confidence=s.min_confidence,
                     cooldown_s=s.cooldown_seconds, target_cooldown_s=s.target_cooldown_seconds,
                     max_per_hour=s.max_per_hour, breaker_failures=s.breaker_failures,
                     breaker_reset_s=s.breaker_reset_seconds)
    return WebhookActuator(cfg, store, endpoint=s.endpoint, secret=s.secret.get_secret_value() if s.secret else None,
                           verify_delay_s=s.verify_delay, timeout_s=s.timeout_seconds, clock=clock,
                           transport=transport)


def build_probe(settings: Settings, *, model: str | None = None) -> LocalProbe | DaytonaProbe:
    """A Daytona probe when DAYTONA_API_KEY is set, else a local one."""
    s = settings.probe
    local = LocalProbe(model=model or s.model, max_tokens=s.max_tokens, timeout_s=s.timeout_seconds)
    if s.daytona_api_key is not None:
        return DaytonaProbe(s.daytona_api_key.get_secret_value(), local)
    return local


# -- assemblies --------------------------------------------------------------------------------------
def build_daemon(settings: Settings, targets: list[Target], options: DaemonOptions, *,
                 clock: Callable[[], float] = time.time, brain: Brain | None = None,
                 view: Sink | None = None, outputs: bool = True) -> Daemon:
    """Everything ``inferguard watch`` runs, from settings. ``brain`` and ``view`` are injected by tests
    and by the CLI (the terminal view needs the TTY the CLI owns). ``outputs=False`` builds no notifier,
    actuator or probe whatever the settings say: ``demo`` (synthetic incidents must page nobody) and
    ``serve`` (an assistant's read-only watcher beside the real one) pass it."""
    check_options(options)
    log = configure(options.log_format, options.out, options.log_level)
    log.debug("allocator", settings=allocator.tame())  # before any worker thread starts: see allocator.py
    telemetry = Telemetry(target_labels=target_label_names(t.labels for t in targets))
    store = build_store(settings, clock=clock, log=log)
    pipeline = build_pipeline(settings, targets, keep_resolved=KEEP_RESOLVED)
    probes = build_probes(settings) if outputs else []
    # A live action's verification runs the daemon's probe too (docs/actuation.md), when it has one.
    verify_probe = probe_runner(probes[0], targets, min(settings.probe.timeout_seconds, VERIFY_PROBE_MAX_S)) \
        if probes else None
    sinks = build_sinks(settings, SinkContext(log=log, telemetry=telemetry, view=view, clock=clock,
                                              state=store if outputs else None,
                                              pipeline=pipeline if outputs else None, probe=verify_probe))
    fanout = Fanout(sinks, log=log, telemetry=telemetry)
    stage = build_stage(settings, brain)
    telemetry.watch_llm(lambda: getattr(stage.brain, "usage", None))  # local brain with an LLM only
    flow = Flow(pipeline, stage, store, publish=fanout.publish, clock=clock, log=log, telemetry=telemetry,
                store_timeout_s=STORE_TIMEOUT_S, offload_parse=True)
    read_model = next((s for s in sinks if isinstance(s, ReadModel)), None)
    if read_model is not None:
        read_model.add_targets((t.url, t.display) for t in targets)
        read_model.window_reader = lambda url, model: flow.pipeline.window(url, model, n=60)
        read_model.proactive_reader = lambda: flow.proactive
        read_model.recall_reader = lambda query, limit: flow.store.recall(query, limit=limit)
        read_model.clock = clock
        if any(isinstance(s, Notifier) for s in sinks):  # silences mean something only while notifying
            read_model.silence_store = store
        if any(isinstance(s, ActuationLane) for s in sinks):
            read_model.action_reader = lambda limit: audit_log(store, limit)
    parts = Parts(source=build_scraper(settings, clock=clock), flow=flow, stage=stage, fanout=fanout,
                  telemetry=telemetry, health=Health(options.interval_s, clock, stall_after_s=options.stall_after_s),
                  log=log, scrape_timeout_s=settings.scrape.timeout_seconds,
                  read_model=read_model, api=build_api(settings, options.listen),
                  writer=TimelineWriter(options.record) if options.record else None,
                  probes=probes, probe_every_s=settings.probe.every, probe_timeout_s=settings.probe.timeout_seconds,
                  ticking=[s for s in sinks if isinstance(s, Notifier | ActuationLane)],
                  tick_every_s=max(TICK_MIN_S, min(TICK_MAX_S, options.interval_s)),
                  proactive_every=settings.brain.proactive_cycle_every, view=view,
                  startup={**startup_fields(settings, targets=targets, interval_s=options.interval_s,
                                            listen=options.listen), **outputs_fields(settings, sinks, probes)},
                  ignored=ineffective_settings() + (unused_outputs(settings) if outputs else []))
    return Daemon(parts, targets, options, clock=clock)


def outputs_fields(settings: Settings, sinks: Sequence[Sink], probes: Sequence[Probe]) -> dict[str, Any]:
    """The start-up line's word on what leaves the process: channel names (never a URL: they hold
    tokens), the actuation mode and its allowlist, the probe schedule."""
    notifier = next((s for s in sinks if isinstance(s, Notifier)), None)
    a = settings.actuation
    acting = any(isinstance(s, ActuationLane) for s in sinks)
    return {"notify": sorted(notifier.channels) if notifier else "off",
            "actuation": f"{a.mode} ({', '.join(sorted(a.allowed_actions()))})" if acting else "off",
            "probes": f"every {settings.probe.every:g}s" if probes and settings.probe.every else "off"}


def check_options(options: DaemonOptions) -> None:
    """The command line's numbers: an interval, a duration or a stall limit must be finite and positive."""
    for name, value in (("--interval", options.interval_s), ("--duration", options.duration_s),
                        ("stall_after_s", options.stall_after_s)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(name, f"must be a finite number of seconds above 0, got {value!r}")


def build_flow(settings: Settings, targets: Sequence[Target] = (), *, single_look: bool = False,
               store: IncidentStore | None = None) -> Flow:
    """The same flow for ``scan`` and ``replay``: rules only (no LLM, no clock), in-memory store, no sinks.
    ``single_look`` judges each condition on one evaluation (a scan cannot wait out persistence)."""
    config = detector_config(settings)
    if single_look:
        config = replace(config, fire_after=1, unreachable_after=1)
    local = settings.model_copy(update={"brain": settings.brain.model_copy(
        update={"brain_mode": "local", "gmi_api_key": None})})
    return Flow(build_pipeline(settings, targets, config=config), build_stage(local), store or MemoryStore())
