"""One canary probe, run the one way the daemon runs it: bounded, never raising, its error redacted.

Used by the daemon's scheduled probe rounds and by the actuation lane's post-action verification, so
both record the same fields and a probe that hangs or crashes says so (``ran: false``) instead of
stopping the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio

from inferguard.models import Target
from inferguard.protocols import Probe
from inferguard.urls import redact_urls

PROBE_FIELDS = ("ok", "ran", "status", "ttft_s", "tpot_s", "tokens", "error", "where")
STARTUP_S = 15.0  # on top of the probe's own timeout: its process's start-up

# Runs one probe against the target with this URL; the lane's verification calls it.
ProbeRun = Callable[[str], Awaitable[dict[str, Any]]]


def not_run(reason: str) -> dict[str, Any]:
    return {"ok": False, "ran": False, "status": None, "ttft_s": None, "tpot_s": None, "tokens": 0,
            "error": reason, "where": "local"}


async def run_probe(probe: Probe, target: Target, timeout_s: float) -> dict[str, Any]:
    """The probe's result with exactly :data:`PROBE_FIELDS`; bounded at ``timeout_s`` + start-up."""
    bound = timeout_s + STARTUP_S
    result: Mapping[str, Any] | None = None
    try:
        with anyio.move_on_after(bound):
            result = dict(await probe.probe(target))
    except Exception as exc:  # a probe's defect must not stop the daemon
        result = not_run(f"the probe failed: {type(exc).__name__}: {exc}")
    if result is None:
        result = not_run(f"the probe did not finish within {bound:.0f}s")
    doc = {k: result.get(k) for k in PROBE_FIELDS}
    doc["ok"], doc["ran"] = bool(doc["ok"]) and bool(doc["ran"]), bool(doc["ran"])
    if doc["error"]:
        doc["error"] = redact_urls(str(doc["error"]))[:300]
    return doc


def probe_runner(probe: Probe, targets: Sequence[Target], timeout_s: float) -> ProbeRun:
    """A :data:`ProbeRun` over the daemon's targets (by URL, as an incident names its target)."""
    by_url = {t.url: t for t in targets}

    async def run(url: str) -> dict[str, Any]:
        return await run_probe(probe, by_url.get(url) or Target(url=url), timeout_s)

    return run
