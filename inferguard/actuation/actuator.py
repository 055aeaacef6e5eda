"""The Actuator: gate → (live only) signed POST to the operator's webhook → audit → verification.

InferGuard ships no engine admin adapter: the webhook's owner decides what an action does. Every
decision (denied and why, dry_run, sent, failed, verified) is appended to an audit log kept in the
StateStore (key ``actuation.audit``, the last 1,000), with the gate's budgets (``actuation.state``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import httpx

from inferguard.actuation import gate
from inferguard.actuation.signing import signed_headers
from inferguard.actuation.verify import PROBE_KEEP, compare, trigger_signals, with_probe
from inferguard.protocols import IncidentDoc, StateStore
from inferguard.urls import safe_url

AUDIT_KEY = "actuation.audit"
STATE_KEY = "actuation.state"
AUDIT_KEEP = 1000
log = logging.getLogger("inferguard.actuation")

# Reads the latest canonical signals of (target, model); None when there are none.
SignalReader = Callable[[str, str], Mapping[str, float] | None]
# Runs one canary probe against the target with this URL; never raises (a probe that did not run says so).
ProbeRun = Callable[[str], Awaitable[Mapping[str, Any]]]


def idempotency_key(advisory: Mapping[str, Any], incident: Mapping[str, Any]) -> str:
    """One incident, one action, one set of parameters: one key, however often it is offered."""
    raw = json.dumps([incident.get("id"), advisory.get("action"), advisory.get("parameters") or {}], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class WebhookActuator:
    def __init__(self, config: gate.GateConfig, store: StateStore, *, endpoint: str | None = None,
                 secret: str | None = None, verify_delay_s: float = 60.0, timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.time, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if config.mode == "live" and (not endpoint or not secret):
            raise ValueError("live actuation needs an endpoint and a secret")
        self.config = config
        self.store = store
        self.endpoint = endpoint
        self._secret = secret
        self.verify_delay_s = verify_delay_s
        self.clock = clock
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout_s, trust_env=False)
        self._lock = anyio.Lock()
        self._verifying: set[str] = set()  # keys whose verification is under way (its probe in flight)

    async def act(self, advisory: Mapping[str, Any], incident: IncidentDoc) -> dict[str, Any]:
        async with self._lock:
            now = self.clock()
            state = await self._state()
            key = idempotency_key(advisory, incident)
            verdict, reason = gate.decide(self.config, state, advisory, incident, key, now)
            entry: dict[str, Any] = {"ts": now, "outcome": verdict, "reason": reason, "mode": self.config.mode,
                                     "action": str(advisory.get("action", "")), "incident": incident.get("id"),
                                     "target": incident.get("target"), "key": key,
                                     "confidence": advisory.get("confidence")}
            if verdict == "denied":
                await self._audit(entry)
                return entry
            gate.spend(state, advisory, incident, key, now)
            if verdict == "dry_run":
                entry["would_send"] = self._body(advisory, incident, key, now)
                await self._save_state(state)
                await self._audit(entry)
                return entry
            ok, detail = await self._post(self._body(advisory, incident, key, now), key, now)
            entry["outcome"], entry["reason"] = ("sent", detail) if ok else ("failed", detail)
            if gate.record_result(self.config, state, ok, now):
                log.error("actuation.breaker_open failures=%d reset_s=%.0f", self.config.breaker_failures,
                          self.config.breaker_reset_s)
            if ok:
                state.setdefault("verify", []).append({
                    "key": key, "due_at": now + self.verify_delay_s, "incident": incident.get("id"),
                    "target": incident.get("target"), "model": incident.get("model") or "",
                    "action": entry["action"], "before": trigger_signals(advisory)})
            else:
                del state["sent_keys"][key]  # a failed send may be offered again once the breaker allows
            await self._save_state(state)
            await self._audit(entry)
            return entry

    async def verify_due(self, read: SignalReader, probe: ProbeRun | None = None) -> list[dict[str, Any]]:
        """Judge every live action whose verification delay has passed; returns the audit entries
        (outcome "verified", with ``verification`` improved / unchanged / worse / unknown). With ``probe``,
        one canary probe per action runs against its target and its result joins the verdict (verify.py)."""
        async with self._lock:
            now = self.clock()
            state = await self._state()
            due = [v for v in state.get("verify", [])
                   if now >= float(v["due_at"]) and str(v["key"]) not in self._verifying]
            keys = {str(v["key"]) for v in due}
            self._verifying |= keys
            if not due:
                return []
        try:
            # The signals are read when due; the probes then run outside the lock, all at once: each is a
            # real request of seconds, and a decision (act) must not wait for them.
            afters = {str(v["key"]): read(str(v["target"]), str(v["model"])) or {} for v in due}
            probes: dict[str, dict[str, Any]] = {}
            if probe is not None:
                async def one(v: Mapping[str, Any]) -> None:
                    got = await probe(str(v["target"]))
                    probes[str(v["key"])] = {k: got.get(k) for k in PROBE_KEEP}

                async with anyio.create_task_group() as tg:
                    for v in due:
                        tg.start_soon(one, v)
            done = [self._verified(v, afters[str(v["key"])], probes.get(str(v["key"])), now) for v in due]
            async with self._lock:
                state = await self._state()
                state["verify"] = [v for v in state.get("verify", []) if str(v["key"]) not in keys]
                await self._save_state(state)
                for entry in done:
                    await self._audit(entry)
            return done
        finally:
            self._verifying -= keys

    def _verified(self, v: Mapping[str, Any], after: Mapping[str, float], probe: dict[str, Any] | None,
                  now: float) -> dict[str, Any]:
        result = compare(v["before"], {k: float(x) for k, x in after.items() if k in v["before"]})
        entry = {"ts": now, "outcome": "verified", "verification": with_probe(result["outcome"], probe),
                 "signals_verdict": result["outcome"], "signals": result["signals"], "action": v["action"],
                 "incident": v["incident"], "target": v["target"], "key": v["key"], "mode": self.config.mode,
                 "reason": f"{self.verify_delay_s:.0f}s after the action"}
        if probe is not None:
            entry["probe"] = probe
        return entry

    async def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        return await audit_log(self.store, limit)

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- internals -----------------------------------------------------------------------------
    def _body(self, advisory: Mapping[str, Any], incident: Mapping[str, Any], key: str, now: float) -> dict[str, Any]:
        return {"version": 1, "idempotency_key": key, "action": advisory.get("action"),
                "parameters": advisory.get("parameters") or {}, "engine_steps": advisory.get("engine_steps") or [],
                "confidence": advisory.get("confidence"), "rationale": advisory.get("rationale", ""),
                "evidence": advisory.get("evidence") or [], "incident_id": incident.get("id"),
                "target": incident.get("target"), "engine": incident.get("engine"), "model": incident.get("model"),
                "severity": incident.get("severity"), "sent_at": now}

    async def _post(self, body: dict[str, Any], key: str, now: float) -> tuple[bool, str]:
        assert self.endpoint is not None and self._secret is not None
        raw = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        headers = signed_headers(self._secret, raw, now, key)
        try:
            resp = await self._http.post(self.endpoint, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            return False, f"{safe_url(self.endpoint)}: {type(exc).__name__}"
        if resp.status_code >= 300:
            return False, f"{safe_url(self.endpoint)}: HTTP {resp.status_code}"
        return True, f"HTTP {resp.status_code}"

    async def _state(self) -> dict[str, Any]:
        doc = await self.store.load(STATE_KEY)
        state = gate.empty_state()
        state.update(doc or {})
        return state

    async def _save_state(self, state: dict[str, Any]) -> None:
        await self.store.save(STATE_KEY, state)

    async def _audit(self, entry: dict[str, Any]) -> None:
        log.info("actuation.%s action=%s incident=%s reason=%s", entry["outcome"], entry["action"],
                 entry["incident"], entry["reason"])
        doc = await self.store.load(AUDIT_KEY) or {}
        entries = [*list(doc.get("entries", [])), entry][-AUDIT_KEEP:]
        await self.store.save(AUDIT_KEY, {"entries": entries})


async def audit_log(store: StateStore, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` audit entries, oldest first (for `inferguard actions list` and the API)."""
    doc = await store.load(AUDIT_KEY) or {}
    return list(doc.get("entries", []))[-limit:]
