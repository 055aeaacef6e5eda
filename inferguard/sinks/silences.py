"""Silences: "don't page about CODE on TARGET until T". Kept in the StateStore so the CLI, the API and
the daemon share them; the daemon re-reads them on every delivery decision.

An incident is silenced when every one of its active anomaly codes is covered by an active silence for
its target: a new kind of trouble on a silenced target still pages.
"""

from __future__ import annotations

import fnmatch
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from inferguard import durations
from inferguard.errors import SilenceError
from inferguard.protocols import StateStore

KEY = "notify.silences"
KEEP_EXPIRED_S = 7 * 86400.0  # expired silences stay listed a week, then go


def parse_duration(text: str) -> float:
    """A silence's length (see :func:`inferguard.durations.parse_duration`); SilenceError when it is not
    a duration or not longer than zero."""
    try:
        seconds = durations.parse_duration(text)
    except ValueError as exc:
        raise SilenceError("for", str(exc)) from None
    if seconds <= 0:
        raise SilenceError("for", "must be longer than zero")
    return seconds


def is_active(s: Mapping[str, Any], now: float) -> bool:
    return s.get("expired_at") is None and float(s["starts_at"]) <= now < float(s["ends_at"])


def covers(s: Mapping[str, Any], inc: Mapping[str, Any], code: str) -> bool:
    names = {str(inc.get("target", "")), str((inc.get("labels") or {}).get("name", ""))} - {""}
    target_ok = any(fnmatch.fnmatchcase(n, str(s["target"])) for n in names)
    return target_ok and fnmatch.fnmatchcase(code, str(s["code"]))


def silenced_by(silences: Sequence[Mapping[str, Any]], inc: Mapping[str, Any], now: float) -> list[str]:
    """IDs of the silences that together cover every active code of ``inc``; [] when it is not silenced."""
    active = [s for s in silences if is_active(s, now)]
    codes = sorted({str(a["code"]) for a in inc.get("anomalies") or [] if a.get("active", True)}) or list(
        inc.get("codes") or [])
    used: list[str] = []
    for code in codes:
        hit = next((s for s in active if covers(s, inc, code)), None)
        if hit is None:
            return []
        if hit["id"] not in used:
            used.append(str(hit["id"]))
    return used


async def load_silences(store: StateStore) -> list[dict[str, Any]]:
    doc = await store.load(KEY)
    return list((doc or {}).get("silences", []))


async def add_silence(store: StateStore, *, target: str, code: str, duration: str | float, comment: str,
                      now: float, created_by: str = "") -> dict[str, Any]:
    """Create a silence; returns it. ``target`` and ``code`` are exact names or globs (``*``)."""
    if not target.strip():
        raise SilenceError("target", "required (a target URL or name; * for all)")
    if not code.strip():
        raise SilenceError("code", "required (an anomaly code such as kv_pressure; * for all)")
    if not comment.strip():
        raise SilenceError("comment", "required: say why, for whoever reads the list later")
    seconds = parse_duration(duration) if isinstance(duration, str) else float(duration)
    if seconds <= 0:
        raise SilenceError("for", "must be longer than zero")
    sil = {"id": f"sil-{secrets.token_hex(4)}", "target": target.strip(), "code": code.strip(),
           "comment": comment.strip(), "created_by": created_by, "starts_at": now, "ends_at": now + seconds,
           "expired_at": None}
    items = [s for s in await load_silences(store) if _keep(s, now)]
    items.append(sil)
    await store.save(KEY, {"silences": items})
    return sil


async def list_silences(store: StateStore, now: float, *, include_expired: bool = False) -> list[dict[str, Any]]:
    out = []
    for s in await load_silences(store):
        state = "active" if is_active(s, now) else "expired"
        if state == "active" or include_expired:
            out.append({**s, "state": state})
    return sorted(out, key=lambda s: float(s["starts_at"]))


async def expire_silence(store: StateStore, silence_id: str, now: float) -> dict[str, Any]:
    """End a silence now; SilenceError("id", ...) when no such silence is active."""
    items = await load_silences(store)
    for s in items:
        if s["id"] == silence_id and is_active(s, now):
            s["expired_at"] = now
            s["ends_at"] = min(float(s["ends_at"]), now)
            await store.save(KEY, {"silences": items})
            return s
    raise SilenceError("id", f"no active silence {silence_id!r}")


def _keep(s: Mapping[str, Any], now: float) -> bool:
    return now - float(s["ends_at"]) < KEEP_EXPIRED_S
