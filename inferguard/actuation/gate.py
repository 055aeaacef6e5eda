"""The actuation gate: may this advisory be sent now? Pure arithmetic on a JSON-able state.

Checked in order, first refusal wins: mode off; not allowlisted; a synthetic incident or claim; the
incident resolved; below the confidence floor; already sent (same idempotency key); the circuit breaker
open; the same action on the same target within its cooldown; any action on the target within the
target cooldown; the hourly budget spent. Dry-run goes through the same checks and counts against the
same budgets, so its record is what live mode would have done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class GateConfig:
    mode: str = "off"  # off | dry_run | live
    allowlist: frozenset[str] = frozenset()
    min_confidence: float = 0.7
    cooldown_s: float = 1800.0
    target_cooldown_s: float = 300.0
    max_per_hour: int = 6
    breaker_failures: int = 3
    breaker_reset_s: float = 600.0


def empty_state() -> dict[str, Any]:
    return {"last_action": {}, "last_target": {}, "hour": [], "sent_keys": {}, "failures": 0, "open_until": None}


def decide(cfg: GateConfig, state: Mapping[str, Any], advisory: Mapping[str, Any], incident: Mapping[str, Any],
           key: str, now: float) -> tuple[str, str]:
    """("denied", why) | ("dry_run", why) | ("send", why)."""
    action = str(advisory.get("action", ""))
    target = str(incident.get("target", ""))
    if cfg.mode == "off":
        return "denied", "actuation is off"
    if action not in cfg.allowlist:
        return "denied", f"{action!r} is not in INFERGUARD_ACTUATION_ALLOWLIST"
    claim = (incident.get("diagnosis") or {}).get("claim_status")
    if incident.get("synthetic") or claim == "synthetic":
        return "denied", "synthetic incident (simulator data)"
    if incident.get("status") == "resolved" or incident.get("resolved_at") is not None:
        return "denied", "incident already resolved"
    conf = advisory.get("confidence")
    if not isinstance(conf, int | float) or conf < cfg.min_confidence:
        return "denied", f"low confidence ({conf} < {cfg.min_confidence})"
    if key in state["sent_keys"]:
        return "denied", "already sent (same idempotency key)"
    if state["open_until"] is not None and now < float(state["open_until"]):
        return "denied", f"circuit breaker open for {float(state['open_until']) - now:.0f}s more"
    last = state["last_action"].get(f"{target}|{action}")
    if last is not None and now - float(last) < cfg.cooldown_s:
        return "denied", f"cooldown: {action} on this target {now - float(last):.0f}s ago (< {cfg.cooldown_s:.0f}s)"
    last = state["last_target"].get(target)
    if last is not None and now - float(last) < cfg.target_cooldown_s:
        return "denied", f"target cooldown: an action {now - float(last):.0f}s ago (< {cfg.target_cooldown_s:.0f}s)"
    recent = [t for t in state["hour"] if now - float(t) < HOUR]
    if len(recent) >= cfg.max_per_hour:
        return "denied", f"hourly budget spent ({len(recent)}/{cfg.max_per_hour})"
    if cfg.mode == "dry_run":
        return "dry_run", "dry run: would have been sent"
    return "send", "allowed"


def spend(state: dict[str, Any], advisory: Mapping[str, Any], incident: Mapping[str, Any], key: str,
          now: float) -> None:
    """Count an action (sent, or dry-run) against cooldowns and the hourly budget."""
    action, target = str(advisory.get("action", "")), str(incident.get("target", ""))
    state["last_action"][f"{target}|{action}"] = now
    state["last_target"][target] = now
    state["hour"] = [t for t in state["hour"] if now - float(t) < HOUR] + [now]
    state["sent_keys"][key] = now
    for k, t in list(state["sent_keys"].items()):  # keys are kept a day: long past any cooldown
        if now - float(t) > 24 * HOUR:
            del state["sent_keys"][k]


def record_result(cfg: GateConfig, state: dict[str, Any], ok: bool, now: float) -> bool:
    """Update the breaker; True when this failure opened it."""
    if ok:
        state["failures"], state["open_until"] = 0, None
        return False
    state["failures"] = int(state["failures"]) + 1
    if state["failures"] >= cfg.breaker_failures:
        state["open_until"] = now + cfg.breaker_reset_s
        state["failures"] = 0
        return True
    return False
