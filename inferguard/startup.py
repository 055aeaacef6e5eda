"""What the daemon tells an operator as it starts: settings that have no effect here, and where settings came from.

Plain functions of (settings, environment): no stage is imported, nothing is logged here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from inferguard.config import Settings

# Settings of InferGuard v6 that this version reads but does not act on. One table: whoever implements
# one of them declares it in a settings group, and from then on it is no longer warned about (see
# declared_env_names); the row can then be deleted.
V6_WITHOUT_EFFECT: tuple[tuple[str, str], ...] = (
    ("UPSTASH_*", "not a setting of this version (Upstash memory reads UPSTASH_REDIS_REST_URL/_TOKEN and "
                  "UPSTASH_VECTOR_REST_URL/_TOKEN)"),
    ("INFERGUARD_ACTUATION_*", "not a setting of this version (docs/actuation.md lists the actuation settings)"),
    ("INFERGUARD_REPLAY_*", "v6's replay settings are replaced by `inferguard replay FILE`"),
    ("DAYTONA_API_KEY", "v6's Daytona sandboxes are not used by this version"),
    ("BL_API_KEY", "v6's Blaxel hosting is not used by this version"),
)


def declared_env_names() -> set[str]:
    """Every environment name some settings group of this version reads."""
    names: set[str] = set()
    for info in Settings.model_fields.values():
        group = info.annotation
        if not (isinstance(group, type) and issubclass(group, BaseSettings)):
            continue
        prefix = str(group.model_config.get("env_prefix", ""))
        for name, field in group.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(str(c).upper() for c in alias.choices)
            elif isinstance(alias, str):
                names.add(alias.upper())
            else:
                names.add(f"{prefix}{name}".upper())
    return names


def ineffective_settings(environ: Mapping[str, str] | None = None,
                         env_file: str | Path | None = ".env") -> list[tuple[str, str]]:
    """(name, why) for each v6 setting that is set (environment or .env) yet does nothing here."""
    environ = os.environ if environ is None else environ
    present = set(environ)
    if env_file is not None and Path(env_file).is_file():
        present |= {k for k, v in dotenv_values(env_file).items() if v is not None}
    declared = declared_env_names()
    out = []
    for name in sorted(present):
        if name.upper() in declared:
            continue
        why = next((w for pattern, w in V6_WITHOUT_EFFECT if fnmatchcase(name.upper(), pattern)), None)
        if why is not None:
            out.append((name, why))
    return out


def unused_outputs(settings: Settings) -> list[tuple[str, str]]:
    """(name, why) for output settings that are set but that the daemon will not act on as given."""
    out = []
    a, n = settings.actuation, settings.notify
    if a.mode == "off":
        for name, value in (("INFERGUARD_ACTUATION_ENDPOINT", a.endpoint), ("INFERGUARD_ACTUATION_ALLOWLIST",
                                                                            a.allowlist.strip()),
                            ("INFERGUARD_ACTUATION_SECRET", a.secret)):
            if value:
                out.append((name, "INFERGUARD_ACTUATION_MODE is off (the default): nothing is decided or sent"))
    elif a.mode == "dry_run" and a.secret is not None:
        out.append(("INFERGUARD_ACTUATION_SECRET", "dry_run signs nothing: nothing is sent"))
    if n.slack_channel and n.slack_bot_token is None:
        out.append(("INFERGUARD_SLACK_CHANNEL", "needs INFERGUARD_SLACK_BOT_TOKEN; the incoming webhook posts to "
                                                "the channel it was made for"))
    return out


def settings_origin(env_file: str | Path | None = ".env") -> str:
    """Where settings were read from, for the start-up line (a path, never a value)."""
    if env_file is not None and Path(env_file).is_file():
        return f"environment + {Path(env_file).resolve()}"
    return "environment (no .env in the working directory)"


def startup_fields(settings: Settings, *, targets: list[Any], interval_s: float, listen: str | None,
                   env_file: str | Path | None = ".env") -> dict[str, Any]:
    """The one start-up log line: what the daemon is about to do, and with which settings."""
    brain = settings.brain
    llm_on = brain.gmi_api_key is not None
    shown = [getattr(t, "name", "") or _without_userinfo(str(getattr(t, "url", t))) for t in targets[:5]]
    return {
        "targets": len(targets),
        "first_targets": shown + ([f"... {len(targets) - 5} more"] if len(targets) > 5 else []),
        "interval_s": interval_s,
        "listen": listen or "off",
        "brain_mode": brain.brain_mode + (f" ({brain.brain_url})" if brain.brain_mode == "remote" else ""),
        "llm": (f"on ({brain.gmi_model}, {brain.llm_max_calls_per_hour} calls/h)" if llm_on
                else "off (no GMI_API_KEY: deterministic rules only)"),
        "proactive_every_cycles": brain.proactive_cycle_every or "off",
        "settings_from": settings_origin(env_file),
    }


def _without_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rsplit('@', 1)[-1]}{slash}{path}"
