"""Actuation, off by default: a gate (off | dry_run | live, allowlist, budgets, breaker), a signed
webhook, an audit log and a verification of every live action."""

from inferguard.actuation.actuator import WebhookActuator, audit_log, idempotency_key
from inferguard.actuation.gate import GateConfig
from inferguard.actuation.signing import sign

__all__ = ["GateConfig", "WebhookActuator", "audit_log", "idempotency_key", "sign"]
