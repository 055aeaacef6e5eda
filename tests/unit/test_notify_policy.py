"""Heard once per change: the notification policy, silences and the outbox's retry arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from inferguard.errors import SilenceError
from inferguard.sinks.outbox import Outbox, RateLimiter, backoff
from inferguard.sinks.policy import NotifyPolicy, PolicyConfig
from inferguard.sinks.silences import add_silence, expire_silence, list_silences, parse_duration, silenced_by
from tests.alerting_support import DictStateStore

T0 = 1_800_000_000.0


def inc(severity: str = "warning", codes: tuple[str, ...] = ("kv_pressure",), iid: str = "inc-1",
        target: str = "http://e1/metrics", value: float = 0.9) -> dict[str, Any]:
    return {"id": iid, "target": target, "severity": severity, "codes": list(codes), "labels": {},
            "anomalies": [{"code": c, "severity": severity, "active": True, "summary": c,
                           "evidence": [{"signal": "kv_usage", "value": value}]} for c in codes],
            "opened_at": T0, "resolved_at": None}


def ev(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {"event": f"incident.{kind}", "changes": [], "incident": doc}


def never(_: Any) -> bool:
    return False


def kinds(notices: list[dict[str, Any]]) -> list[str]:
    return [n["kind"] for n in notices]


def test_open_refresh_resolve_is_two_notifications() -> None:
    p = NotifyPolicy(PolicyConfig(repeat_s=3600, sustain_s=60))
    out = p.on_event(ev("opened", inc()), T0, never)
    for i in range(1, 20):  # evidence refreshes: new numbers, same anomalies and severity
        out += p.on_event(ev("updated", inc(value=0.9 + i / 1000)), T0 + 3 * i, never)
        out += p.due(T0 + 3 * i, never)
    out += p.on_event(ev("resolved", inc()), T0 + 70, never)
    out += p.on_event(ev("resolved", inc()), T0 + 71, never)  # a duplicate is no news
    assert kinds(out) == ["firing", "resolved"]
    assert len({n["key"] for n in out}) == 2


def test_severity_change_is_notified_only_when_sustained() -> None:
    p = NotifyPolicy(PolicyConfig(repeat_s=3600, sustain_s=60))
    out = p.on_event(ev("opened", inc("warning")), T0, never)
    out += p.on_event(ev("updated", inc("critical")), T0 + 10, never)
    out += p.on_event(ev("updated", inc("warning")), T0 + 40, never)  # wobbled back: no news
    out += p.due(T0 + 100, never)
    assert kinds(out) == ["firing"]
    out += p.on_event(ev("updated", inc("critical")), T0 + 110, never)
    out += p.due(T0 + 169, never)
    assert kinds(out) == ["firing"]
    out += p.due(T0 + 170, never)
    assert kinds(out) == ["firing", "severity"]
    assert out[-1]["previous_severity"] == "warning" and out[-1]["incident"]["severity"] == "critical"
    out += p.due(T0 + 500, never)
    assert kinds(out) == ["firing", "severity"]


def test_repeat_only_after_the_interval() -> None:
    p = NotifyPolicy(PolicyConfig(repeat_s=3600, sustain_s=60))
    out = p.on_event(ev("opened", inc()), T0, never)
    for t in range(0, 3600, 30):
        out += p.due(T0 + t, never)
    assert kinds(out) == ["firing"]
    out += p.due(T0 + 3600, never)
    out += p.due(T0 + 3601, never)
    assert kinds(out) == ["firing", "repeat"]
    out += p.due(T0 + 7199, never)
    out += p.due(T0 + 7200, never)
    assert kinds(out) == ["firing", "repeat", "repeat"]


def test_state_survives_a_restart_without_repeating() -> None:
    p = NotifyPolicy(PolicyConfig())
    assert kinds(p.on_event(ev("opened", inc()), T0, never)) == ["firing"]
    again = NotifyPolicy(PolicyConfig(), p.state())
    assert again.on_event(ev("opened", inc()), T0 + 5, never) == []
    assert kinds(again.on_event(ev("resolved", inc()), T0 + 9, never)) == ["resolved"]


def test_reopened_incident_is_news_once() -> None:
    p = NotifyPolicy(PolicyConfig())
    out = p.on_event(ev("opened", inc()), T0, never) + p.on_event(ev("resolved", inc()), T0 + 30, never)
    out += p.on_event(ev("opened", inc()), T0 + 40, never)  # a replayed event of a resolved incident
    out += p.on_event(ev("updated", inc()), T0 + 50, never)
    assert kinds(out) == ["firing", "resolved"]
    flap = {**ev("updated", inc()), "changes": ["reopened (flap 1)"]}
    out += p.on_event(flap, T0 + 60, never)  # the same incident reopened
    out += p.on_event(ev("updated", inc()), T0 + 63, never)
    assert kinds(out) == ["firing", "resolved", "firing"]
    assert len({n["key"] for n in out}) == 3


async def test_silence_holds_then_expires_and_resolve_is_still_delivered() -> None:
    store = DictStateStore()
    sil = await add_silence(store, target="http://e1/*", code="kv_*", duration="2h", comment="maintenance", now=T0)
    items = await list_silences(store, T0)

    def quiet(doc: Any) -> bool:
        return bool(silenced_by(items, doc, now))

    p = NotifyPolicy(PolicyConfig())
    now = T0 + 1
    assert p.on_event(ev("opened", inc()), now, quiet) == []
    # A new kind of trouble on a silenced target is not covered: it pages.
    now = T0 + 5
    assert kinds(p.on_event(ev("updated", inc(codes=("kv_pressure", "queue_buildup"))), now, quiet)) == ["firing"]
    # Announced, then silenced wholly again: no repeats, but the resolution still goes out.
    now = T0 + 10
    p.on_event(ev("updated", inc()), now, quiet)
    now = T0 + 5 * 3600
    assert p.due(now, lambda d: True) == []
    assert kinds(p.on_event(ev("resolved", inc()), now, lambda d: True)) == ["resolved"]
    # Expiry: a silence ended by hand no longer covers anything.
    await expire_silence(store, sil["id"], T0 + 20)
    assert await list_silences(store, T0 + 21) == []
    assert [s["state"] for s in await list_silences(store, T0 + 21, include_expired=True)] == ["expired"]
    with pytest.raises(SilenceError, match="id"):
        await expire_silence(store, sil["id"], T0 + 22)


async def test_silenced_from_the_start_announces_when_the_silence_ends() -> None:
    store = DictStateStore()
    await add_silence(store, target="*", code="*", duration=600, comment="deploy", now=T0)
    items = await list_silences(store, T0)
    p = NotifyPolicy(PolicyConfig())
    assert p.on_event(ev("opened", inc()), T0 + 1, lambda d: bool(silenced_by(items, d, T0 + 1))) == []
    assert p.due(T0 + 599, lambda d: bool(silenced_by(items, d, T0 + 599))) == []
    assert kinds(p.due(T0 + 600, lambda d: bool(silenced_by(items, d, T0 + 600)))) == ["firing"]


@pytest.mark.parametrize(("field", "kwargs"), [
    ("target", {"target": " "}), ("code", {"code": ""}), ("comment", {"comment": ""}),
    ("for", {"duration": "soon"}), ("for", {"duration": "0m"})])
async def test_bad_silence_is_refused_by_name(field: str, kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"target": "*", "code": "*", "duration": "2h", "comment": "x", **kwargs}
    with pytest.raises(SilenceError) as err:
        await add_silence(DictStateStore(), now=T0, **args)
    assert err.value.field == field


def test_durations() -> None:
    assert parse_duration("2h") == 7200 and parse_duration("1h30m") == 5400 and parse_duration("45") == 45


def test_backoff_grows_is_capped_and_jittered() -> None:
    lo = [backoff(n, base=2, cap=300, rand=lambda: 0.0) for n in range(1, 12)]
    hi = [backoff(n, base=2, cap=300, rand=lambda: 1.0) for n in range(1, 12)]
    assert lo[:4] == [1, 2, 4, 8] and hi[:4] == [2, 4, 8, 16]
    assert max(hi) == 300 and min(lo[-3:]) == 150


def test_rate_limiter() -> None:
    r = RateLimiter(per_minute=2)
    assert r.take(0) == 0 and r.take(0) == 0
    assert r.take(0) == pytest.approx(30)
    assert r.take(30) == 0


def test_outbox_keeps_order_and_dedupes_keys() -> None:
    box = Outbox()
    n = {"key": "a:firing:1:1", "kind": "firing", "incident": {"id": "a"}, "at": T0}
    assert box.add("c", n, T0) is not None and box.add("c", n, T0) is None
    assert box.add("c", {**n, "key": "a:refresh:1", "kind": "refresh"}, T0) is None
    assert box.add("c", {**n, "key": "a:resolved:1:2", "kind": "resolved"}, T0) is not None
    assert [e["notice"]["kind"] for e in box.ordered()] == ["firing", "resolved"]


class _Crashing:
    """A channel whose process "dies" mid-delivery (an exception that is not a SinkError)."""

    name = "hook"
    resend_every = None

    def __init__(self) -> None:
        self.got: list[str] = []
        self.crash = True

    async def deliver(self, notice: dict[str, Any], memo: dict[str, Any]) -> None:
        if self.crash:
            raise RuntimeError("killed mid-send")
        self.got.append(notice["key"])

    async def aclose(self) -> None:
        return None


async def test_a_notification_is_persisted_before_its_first_attempt() -> None:
    from inferguard.sinks import Notifier

    store = DictStateStore()
    ch = _Crashing()
    first = Notifier([ch], store, clock=lambda: T0)
    with pytest.raises(RuntimeError):
        await first.send(ev("opened", inc()))
    ch.crash = False
    again = Notifier([ch], store, clock=lambda: T0 + 5)  # the restarted daemon
    await again.tick()
    assert len(ch.got) == 1 and ch.got[0].startswith("inc-1:firing")
