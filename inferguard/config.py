"""Settings, grouped by meaning, loaded once at start and passed down. Secrets are SecretStr.

Operators' existing names are kept (TARGET_ENDPOINT, POLL_INTERVAL_SECONDS, KV_ALERT_THRESHOLD,
TTFT_ALERT_MULTIPLIER, GMI_*); everything new is INFERGUARD_*.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from inferguard.errors import ConfigError
from inferguard.models import ENGINE_HINTS, Target
from inferguard.urls import redact_urls, split_credentials


def _cfg(prefix: str = "INFERGUARD_") -> SettingsConfigDict:
    # allow_inf_nan=False: "inf" and "nan" parse as floats, and pass gt=0 ("inf") or every comparison
    # a bound makes false silently downstream; no setting here means anything by them.
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore", populate_by_name=True,
                              allow_inf_nan=False)


# Bounds shared by the settings, the targets file and the command line (check_number): a scrape
# interval under MIN_INTERVAL_S hammers the engine; a timeout must end well within a day.
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 86_400.0
MAX_TIMEOUT_S = 600.0
MAX_DURATION_S = 10 * 365 * 86_400.0  # `--duration`: ten years is "until stopped"


def check_number(name: str, value: float, *, low: float, high: float, low_inclusive: bool = True) -> float:
    """A command-line number: finite and within [low, high] (or (low, high]); a ConfigError naming
    ``name`` otherwise. The CLI turns it into one line and exit code 64."""
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and (value >= low if low_inclusive else value > low) and value <= high)
    if not ok:
        bound = f"{'[' if low_inclusive else '('}{low:g}, {high:g}]"
        raise ConfigError(name, f"must be a finite number in {bound}, got {value!r}")
    return float(value)


class TargetSettings(BaseSettings):
    model_config = _cfg()
    endpoint: str = Field("", validation_alias=AliasChoices("TARGET_ENDPOINT", "INFERGUARD_TARGET_ENDPOINT"),
                          description="one /metrics URL or a comma-separated list")
    poll_interval_seconds: float = Field(30.0, allow_inf_nan=False, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S,
                                         validation_alias=AliasChoices(
        "POLL_INTERVAL_SECONDS", "INFERGUARD_POLL_INTERVAL_SECONDS"), description="seconds between scrapes")
    targets_file: Path | None = Field(None, description="YAML/JSON list of targets with labels and thresholds")


class ScrapeSettings(BaseSettings):
    model_config = _cfg("INFERGUARD_SCRAPE_")
    timeout_seconds: float = Field(5.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False,
                                   description="per-target scrape timeout")
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=1024, description="largest /metrics body accepted")
    concurrency: int = Field(64, ge=1, le=4096, description="scrapes in flight at once")
    # What one target's page may make the daemon hold (docs/operations.md, Limits); past each, the
    # excess is dropped and counted (the metrics_dropped finding), never kept.
    max_series: int = Field(50_000, ge=1, le=10_000_000, description="samples kept per page, of the names read")
    max_label_length: int = Field(1024, ge=16, le=1_048_576,
                                  description="characters in one label name or value; a longer one drops its series")
    max_models: int = Field(64, ge=1, le=4096, description="models (GPUs for DCGM) tracked per target")


class DetectSettings(BaseSettings):
    model_config = _cfg()
    kv_alert_threshold: float = Field(0.85, gt=0, le=1, validation_alias=AliasChoices(
        "KV_ALERT_THRESHOLD", "INFERGUARD_KV_ALERT_THRESHOLD"), description="KV usage that counts as pressure")
    ttft_alert_multiplier: float = Field(2.0, gt=1, validation_alias=AliasChoices(
        "TTFT_ALERT_MULTIPLIER", "INFERGUARD_TTFT_ALERT_MULTIPLIER"), description="TTFT p95 over baseline x this")
    queue_threshold: float = Field(8.0, gt=0, description="waiting requests that count as a queue")
    preemption_rate: float = Field(0.5, gt=0, description="preemptions per second that count as a storm")


class BrainSettings(BaseSettings):
    model_config = _cfg()
    brain_mode: Literal["local", "remote"] = Field("local", description="in-process brain or rlm-agent serve")
    brain_url: str | None = Field(None, description="rlm-agent serve URL when brain_mode=remote")
    proactive_cycle_every: int = Field(5, ge=0, description="cycles between proactive investigations; 0 = off")
    gmi_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("GMI_API_KEY"),
                                          description="LLM API key; no key = deterministic rules only")
    gmi_base_url: str = Field("https://api.gmi-serving.com/v1", validation_alias=AliasChoices("GMI_BASE_URL"),
                              description="OpenAI-compatible endpoint")
    gmi_model: str = Field("openai/gpt-oss-120b", validation_alias=AliasChoices("GMI_MODEL"),
                           description="model name at that endpoint")
    llm_timeout_seconds: float = Field(20.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False, description="per LLM call")
    llm_max_calls_per_hour: int = Field(60, ge=0, description="LLM calls per sliding hour (retries included)")
    llm_proactive_share: float = Field(0.25, ge=0, le=1, allow_inf_nan=False,
                                       description="share of the LLM budget proactive calls may use; 0 = off")
    llm_price_input_per_mtok: float | None = Field(None, ge=0, allow_inf_nan=False,
                                                   description="USD per million prompt tokens (LLM cost)")
    llm_price_output_per_mtok: float | None = Field(None, ge=0, allow_inf_nan=False,
                                                    description="USD per million completion tokens (LLM cost)")
    llm_redact: bool = Field(False, description="redact hostnames, IPs and model names before the LLM sees them")


class ServerSettings(BaseSettings):
    model_config = _cfg()
    listen: str = Field("127.0.0.1:9464", description="host:port for /metrics, /healthz, /readyz and the API")
    log_format: Literal["auto", "json", "console"] = Field("auto", description="auto = JSON unless a TTY")
    api_token: SecretStr | None = Field(None, min_length=16, description="bearer token for the API and the "
                                        "dashboard; required to listen on a non-loopback address")
    api_allowed_hosts: str = Field("", description="extra Host header names accepted (comma-separated)")
    api_max_connections: int = Field(128, ge=4, le=65536, description="open HTTP connections at most; "
                                     "past it the oldest idle one is closed")
    api_header_timeout_seconds: float = Field(10.0, gt=0, le=300, description="seconds a client may take "
                                              "to send a request's headers")
    api_rate_limit_per_second: float = Field(20.0, gt=0, le=100000, description="requests per second per "
                                             "client address (burst: twice that); probes are exempt")
    api_max_request_bytes: int = Field(65536, ge=1024, le=16 * 1024 * 1024, description="largest request "
                                       "(headers aside) accepted")

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:9464")
        return v


def _url_scheme(v: str | SecretStr | None, schemes: tuple[str, ...]) -> None:
    raw = v.get_secret_value() if isinstance(v, SecretStr) else v
    if raw is None:
        return
    parts = urlsplit(raw.strip())
    if parts.scheme not in schemes or not (parts.hostname or parts.path):
        # Never echo the value: a Redis URL may carry a password.
        raise ValueError(f"must be a {' or '.join(s + '://' for s in schemes)} URL")


class MemorySettings(BaseSettings):
    """Incident memory. ``auto`` picks Upstash, then Redis, when their settings are present, else SQLite."""

    model_config = _cfg()
    state_dir: Path | None = Field(None, description="folder of the embedded store (default $STATE_DIRECTORY, "
                                                     "else $XDG_STATE_HOME/inferguard, else ~/.local/state/inferguard)")
    memory_state: Literal["auto", "sqlite", "redis", "upstash"] = Field(
        "auto", description="backend for incidents, events and restart state")
    memory_recall: Literal["auto", "sqlite", "upstash"] = Field(
        "auto", description="backend for recall (sqlite: FTS5 + fingerprint; upstash: Upstash Vector)")
    redis_url: SecretStr | None = Field(None, description="redis:// or rediss:// URL of a Redis server")
    namespace: str = Field("inferguard", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                           description="prefix of every Redis/Upstash key and vector id")
    upstash_redis_rest_url: str | None = Field(None, validation_alias=AliasChoices(
        "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_URL"), description="Upstash Redis REST URL")
    upstash_redis_rest_token: SecretStr | None = Field(None, validation_alias=AliasChoices(
        "UPSTASH_REDIS_REST_TOKEN", "UPSTASH_REDIS_TOKEN"), description="Upstash Redis REST token")
    upstash_vector_rest_url: str | None = Field(None, validation_alias=AliasChoices(
        "UPSTASH_VECTOR_REST_URL", "UPSTASH_VECTOR_URL"), description="Upstash Vector REST URL")
    upstash_vector_rest_token: SecretStr | None = Field(None, validation_alias=AliasChoices(
        "UPSTASH_VECTOR_REST_TOKEN", "UPSTASH_VECTOR_TOKEN"), description="Upstash Vector REST token")
    memory_retention_days: float = Field(90.0, gt=0, description="resolved incidents older than this are dropped")
    memory_max_incidents: int = Field(100_000, ge=10, description="most incidents kept (oldest resolved go first)")
    memory_max_events: int = Field(500_000, ge=100, description="length of the capped event stream")
    memory_timeout_seconds: float = Field(2.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False,
                                          description="per Redis/Upstash call; slower counts as down")

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: SecretStr | None) -> SecretStr | None:
        _url_scheme(v, ("redis", "rediss", "unix"))
        return v

    @field_validator("upstash_redis_rest_url", "upstash_vector_rest_url")
    @classmethod
    def _upstash(cls, v: str | None) -> str | None:
        _url_scheme(v, ("https", "http"))
        return v.strip().rstrip("/") if v else v

    def state_backend(self) -> str:
        if self.memory_state != "auto":
            return self.memory_state
        if self.upstash_redis_rest_url:
            return "upstash"
        return "redis" if self.redis_url is not None else "sqlite"

    def recall_backend(self) -> str:
        if self.memory_recall != "auto":
            return self.memory_recall
        return "upstash" if self.upstash_vector_rest_url else "sqlite"

    def resolved_state_dir(self) -> Path:
        """INFERGUARD_STATE_DIR, else systemd's $STATE_DIRECTORY (StateDirectory=), else the XDG state dir."""
        if self.state_dir is not None:
            return self.state_dir.expanduser()
        systemd = os.environ.get("STATE_DIRECTORY")
        if systemd:
            return Path(systemd.split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
        return base / "inferguard"

    def describe(self) -> dict[str, str]:
        """Which backend serves state and which serves recall, for `config show` (no secrets)."""
        sqlite = f"sqlite ({self.resolved_state_dir() / 'inferguard.db'})"
        where = {"sqlite": sqlite, "upstash": f"upstash redis ({self.upstash_redis_rest_url})"}
        if self.redis_url is not None:
            where["redis"] = f"redis ({_redact_url(self.redis_url.get_secret_value())}, namespace {self.namespace})"
        recall = {"sqlite": sqlite + ": FTS5 BM25 text + fingerprint cosine",
                  "upstash": f"upstash vector ({self.upstash_vector_rest_url}) + fingerprint cosine in sqlite"}
        state = self.state_backend()
        return {"state": where.get(state, f"{state} (not configured)"),
                "recall": recall[self.recall_backend()],
                "spool": sqlite if state != "sqlite" else "none (state is local)"}


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{'***@' if parts.password or parts.username else ''}{host}{f':{parts.port}' if parts.port else ''}"
    return f"{parts.scheme}://{netloc}{parts.path}"

class NotifySettings(BaseSettings):
    model_config = _cfg()
    slack_webhook_url: SecretStr | None = Field(None, description="Slack incoming-webhook URL")
    slack_bot_token: SecretStr | None = Field(None, description="Slack bot token (xoxb-...): one message per incident, "
                                              "updates in its thread")
    slack_channel: str | None = Field(None, description="channel the bot posts to (with INFERGUARD_SLACK_BOT_TOKEN)")
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL")
    public_url: str | None = Field(None, description="InferGuard's own URL, linked from notifications")
    webhook_url: SecretStr | None = Field(
        None, description="Alertmanager-compatible webhook receivers: comma-separated URLs, each optionally "
                          ";bearer=TOKEN or ;basic=USER:PASS")
    alertmanager_url: SecretStr | None = Field(
        None, description="Alertmanager base URL(s), same syntax; alerts go to /api/v2/alerts")
    notify_repeat_interval_seconds: float = Field(4 * 3600.0, gt=0, description="repeat a still-open incident after")
    notify_sustain_seconds: float = Field(60.0, ge=0, description="a severity change is notified once it held")
    notify_rate_per_minute: int = Field(20, ge=1, description="notifications per minute per sink")
    notify_max_backoff_seconds: float = Field(300.0, gt=0, description="longest wait between delivery retries")
    notify_timeout_seconds: float = Field(10.0, gt=0, description="per delivery attempt")
    alertmanager_resend_seconds: float = Field(60.0, gt=0, description="re-send firing alerts to Alertmanager every")

    @field_validator("slack_api_url", "public_url")
    @classmethod
    def _urls(cls, v: str | None) -> str | None:
        return None if v is None or not v.strip() else _check_url(v)


class ActuationSettings(BaseSettings):
    model_config = _cfg("INFERGUARD_ACTUATION_")
    mode: Literal["off", "dry_run", "live"] = Field("off", description="off | dry_run (record only) | live")
    endpoint: str | None = Field(None, description="the operator's actuation webhook URL")
    allowlist: str = Field("", description="comma-separated action names that may be sent")
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-InferGuard-Signature")
    verify_delay: float = Field(60.0, ge=0, description="seconds after a live action before checking it worked")
    min_confidence: float = Field(0.7, ge=0, le=1, description="advisories below this confidence are never sent live")
    cooldown_seconds: float = Field(1800.0, ge=0, description="same action on the same target at most once per")
    target_cooldown_seconds: float = Field(300.0, ge=0, description="any action on one target at most once per")
    max_per_hour: int = Field(6, ge=0, description="actions sent per hour, all targets")
    breaker_failures: int = Field(3, ge=1, description="consecutive failures that open the circuit breaker")
    breaker_reset_seconds: float = Field(600.0, gt=0, description="an open breaker tries again after")
    timeout_seconds: float = Field(10.0, gt=0, description="per actuation request")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        return None if v is None or not v.strip() else _check_url(v)

    def allowed_actions(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.allowlist.split(",") if a.strip())


class ProbeSettings(BaseSettings):
    model_config = _cfg("INFERGUARD_PROBE_")
    every: float | None = Field(None, ge=1.0, le=MAX_INTERVAL_S,
                                description="seconds between canary probes of each target by the daemon (unset: off)")
    model: str | None = Field(None, description="model to ask (default: the engine's first model)")
    timeout_seconds: float = Field(30.0, gt=0, description="per probe")
    max_tokens: int = Field(16, ge=1, le=4096, description="tokens a probe asks for")
    daytona_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("DAYTONA_API_KEY"),
                                              description="run probes in a Daytona sandbox (extra: daytona)")


class TargetSpec(BaseModel):
    """One entry of INFERGUARD_TARGETS_FILE."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    url: str
    name: str = ""
    engine: str | None = None
    interval_seconds: float | None = Field(None, allow_inf_nan=False, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)
    timeout_seconds: float | None = Field(None, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    bearer_token: SecretStr | None = None
    bearer_token_env: str | None = None
    labels: dict[str, str] = {}
    thresholds: dict[str, float] = {}

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v)

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: str | None) -> str | None:
        if v is not None and v not in ENGINE_HINTS:
            raise ValueError(f"unknown engine {v!r}; one of {', '.join(sorted(h for h in ENGINE_HINTS if h))}")
        return v


def _check_url(v: str) -> str:
    v = v.strip()
    if not v.startswith(("http://", "https://")) or len(v) < 10:
        raise ValueError(f"not an http(s) URL: {split_credentials(v)[0]!r}")
    return with_metrics_path(v)


def with_metrics_path(url: str) -> str:
    """A base URL (no path, or just ``/``) means the engine's ``/metrics``, as InferGuard v6's
    TARGET_ENDPOINT did; any other path is taken as given (an exporter behind a proxy may serve elsewhere)."""
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if (not slash or not path) and "?" not in host and "#" not in host:
        return f"{scheme}://{host}/metrics"
    return url


class Settings(BaseModel):
    targets: TargetSettings
    scrape: ScrapeSettings
    detect: DetectSettings
    brain: BrainSettings
    server: ServerSettings
    memory: MemorySettings
    notify: NotifySettings
    actuation: ActuationSettings
    probe: ProbeSettings

    @classmethod
    def load(cls, env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
        """Read the environment and ``.env``; a bad value is a ConfigError naming the setting."""
        built: dict[str, Any] = {}
        for key, group in GROUPS.items():
            try:
                built[key] = group(_env_file=env_file, **overrides.get(key, {}))
            except ValidationError as exc:
                raise _config_error(group, exc) from None
            except UnicodeDecodeError as exc:
                raise ConfigError(str(env_file), f"not UTF-8 text (byte {exc.start})") from None
        return cls.model_validate(built)

    def target_list(self, urls: list[str] | None = None) -> list[Target]:
        """Targets from the command line, else TARGET_ENDPOINT, plus INFERGUARD_TARGETS_FILE."""
        out: list[Target] = []
        raw = urls if urls else [u for u in self.targets.endpoint.split(",") if u.strip()]
        for u in raw:
            try:
                out.append(Target.from_url(_check_url(u)))
            except ValueError as exc:
                raise ConfigError("TARGET_ENDPOINT", str(exc)) from None
        if self.targets.targets_file is not None and not urls:
            out.extend(load_targets_file(self.targets.targets_file))
        seen: set[str] = set()
        for t in out:
            if t.url in seen:
                raise ConfigError("targets", f"duplicate target {t.url}")
            seen.add(t.url)
        return out

    def redacted(self) -> dict[str, Any]:
        """Effective settings for `inferguard config show`: every secret replaced."""
        out: dict[str, Any] = {}
        for key in GROUPS:
            group: BaseSettings = getattr(self, key)
            values = {}
            for name, value in group:
                if isinstance(value, SecretStr):
                    value = "**********"
                elif key == "targets" and name == "endpoint":
                    value = redact_urls(value)
                elif isinstance(value, Path):
                    value = str(value)
                values[name] = value
            out[key] = values
        out["memory_backends"] = self.memory.describe()
        return out


GROUPS: dict[str, type[BaseSettings]] = {"targets": TargetSettings, "scrape": ScrapeSettings,
                                         "detect": DetectSettings, "brain": BrainSettings, "server": ServerSettings,
                                         "memory": MemorySettings, "notify": NotifySettings,
                                         "actuation": ActuationSettings, "probe": ProbeSettings}


def load_targets_file(path: Path) -> list[Target]:
    setting = "INFERGUARD_TARGETS_FILE"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(setting, f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(setting, f"{path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    if isinstance(data, dict) and "targets" in data:
        data = data["targets"]
    if not isinstance(data, list):
        raise ConfigError(setting, f"{path} must hold a list of targets")
    out = []
    for i, item in enumerate(data):
        # Threshold names are checked against the detectors when the pipeline is built (runtime/build.py).
        try:
            spec = TargetSpec.model_validate(item)
        except (ValidationError, ValueError) as exc:
            raise ConfigError(f"{setting}[{i}]", _first_error(exc)) from None
        token = spec.bearer_token.get_secret_value() if spec.bearer_token else None
        if spec.bearer_token_env:
            token = os.environ.get(spec.bearer_token_env)
            if token is None:
                raise ConfigError(f"{setting}[{i}].bearer_token_env", f"${spec.bearer_token_env} is not set")
        out.append(Target.from_url(spec.url, name=spec.name, engine_hint=spec.engine,
                          interval_s=spec.interval_seconds, timeout_s=spec.timeout_seconds, bearer_token=token,
                          labels=spec.labels, thresholds=spec.thresholds))
    return out


def _first_error(exc: ValidationError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        return f"{loc}: {err['msg']}" if loc else err["msg"]
    return str(exc)


def _config_error(group: type[BaseSettings], exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else "?"
    info = group.model_fields.get(field)
    if info is None:
        env = field  # pydantic reports an aliased field by the alias the operator used
    elif isinstance(info.validation_alias, AliasChoices):
        env = str(info.validation_alias.choices[0])
    else:
        env = f"{group.model_config.get('env_prefix', '')}{field.upper()}"
    # Never echo the offending value: it may be a secret.
    return ConfigError(env, str(err["msg"]))
