"""The actuator from settings (called by the composition root)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from inferguard.actuation.actuator import WebhookActuator
from inferguard.actuation.gate import GateConfig
from inferguard.config import ActuationSettings
from inferguard.errors import ConfigError
from inferguard.protocols import StateStore


def build_actuator(s: ActuationSettings, store: StateStore, *, clock: Callable[[], float] = time.time,
                   transport: httpx.AsyncBaseTransport | None = None) -> WebhookActuator | None:
    """None when actuation is off: nothing is decided, nothing is sent."""
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
