"""Notifications over real loopback HTTP, from replayed real-vLLM timelines.

The receiver stands in for Slack (incoming webhook, and the Web API reached by the real slack_sdk
client through ``base_url``) and for Alertmanager webhook receivers: it speaks their HTTP protocol and
records what it gets.
"""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from inferguard.config import Settings
from inferguard.runtime.build import build_notifier
from inferguard.runtime.oneshot import replay_outputs
from inferguard.sinks import (
    Endpoint,
    Notifier,
    PolicyConfig,
    SlackBotChannel,
    SlackWebhookChannel,
    WebhookChannel,
    add_silence,
    parse_endpoints,
)
from inferguard.sources.timeline import read_timeline
from inferguard.testing import FakeClock
from tests.alerting_support import DictStateStore, Request, receiver
from tests.support import free_port

DATA = Path(__file__).resolve().parents[1] / "data"
TIMELINES = sorted(DATA.glob("vllm_*.jsonl.gz"))
V4_KEYS = {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels",
           "commonAnnotations", "externalURL", "alerts"}
ALERT_KEYS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}


def slack_api(req: Request) -> tuple[int, Any]:
    if req.path.endswith("/chat.postMessage"):
        body = req.json()
        return 200, {"ok": True, "channel": "C42", "ts": f"1700000000.{len(body.get('text', '')):06d}"}
    if req.path.endswith("/chat.update"):
        return 200, {"ok": True, "channel": "C42", "ts": req.json()["ts"]}
    return 200, {"ok": True}


def settings() -> Settings:
    return Settings.load(env_file=None)


def incidents_of(webhook_requests: list[Request]) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for r in webhook_requests:
        body = r.json()
        out[(body["groupLabels"]["incident_id"], body["alerts"][0]["annotations"]["notification"])] += 1
    return out


@pytest.mark.parametrize("timeline", TIMELINES, ids=lambda p: p.name.split(".")[0])
async def test_each_incident_is_heard_once_when_it_opens_and_once_when_it_resolves(timeline: Path) -> None:
    with receiver() as rec:
        rec.reply = slack_api
        store = DictStateStore()
        clock = FakeClock(0.0)
        hook = parse_endpoints(f"{rec.url}/hook;basic=am:s3cret", "INFERGUARD_WEBHOOK_URL")[0]
        channels = [SlackWebhookChannel(f"{rec.url}/services/T0/B0/XXXX", public_url="http://ig.example"),
                    SlackBotChannel("xoxb-test-token", "#inference", base_url=f"{rec.url}/api/"),
                    WebhookChannel(hook, public_url="http://ig.example")]
        notifier = Notifier(channels, store, clock=clock, policy=PolicyConfig(repeat_s=4 * 3600, sustain_s=60))
        lifecycle: Counter[tuple[str, str]] = Counter()

        async def count(obs: Any) -> None:
            for ev in obs.events:
                kind = {"opened": "firing", "reopened": "firing", "resolved": "resolved"}.get(ev.kind)
                if kind:
                    lifecycle[(ev.incident.id, kind)] += 1

        pipeline = await replay_outputs(timeline, settings(), clock, notifier=notifier, on_observation=count)
        await notifier.aclose()
        ids = [i.id for i in pipeline.book.history]
        assert ids, "each recording holds an incident"
        # Alertmanager webhook payload v4, with basic auth: one firing per opening (a flap's return opens
        # again) and one resolved per resolution, nothing for evidence refreshes or short-lived changes.
        hooks = rec.on("/hook")
        assert incidents_of(hooks) == lifecycle
        assert all(lifecycle[(i, "firing")] >= 1 for i in ids)
        for r in hooks:
            body = r.json()
            assert set(body) == V4_KEYS and body["version"] == "4"
            assert all(set(a) == ALERT_KEYS for a in body["alerts"])
            assert r.headers["Authorization"] == "Basic " + base64.b64encode(b"am:s3cret").decode()
        first, last = hooks[0].json(), hooks[-1].json()
        assert first["status"] == "firing" and first["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        ended = pipeline.book.history[-1].resolved_at is not None
        assert last["status"] == ("resolved" if ended else "firing")
        if ended:
            assert last["alerts"][0]["endsAt"].startswith("20")
        assert first["alerts"][0]["labels"]["incident_id"] == ids[0]
        # Slack incoming webhook: Block Kit, one message per notification.
        slack = rec.on("/services/")
        assert len(slack) == sum(lifecycle.values())
        text = str(slack[0].json()["blocks"])
        assert "FIRING" in slack[0].json()["text"] and "*Anomalies*" in text and "root cause" in text
        advised = bool(hooks[0].json()["alerts"][0]["annotations"]["description"].count("ADVISORY"))
        assert ("ADVISORY" in text) == advised
        assert "http://ig.example/#incident=" in text  # the page, not the bearer-only API
        assert ("RESOLVED" in slack[-1].json()["text"]) == ended
        # Slack Web API through slack_sdk: one parent, the resolution in its thread, the parent edited.
        posts, updates = rec.on("/api/chat.postMessage"), rec.on("/api/chat.update")
        assert all(r.headers["Authorization"] == "Bearer xoxb-test-token" for r in posts + updates)
        parents = [p.json() for p in posts if "thread_ts" not in p.json()]
        replies = [p.json() for p in posts if "thread_ts" in p.json()]
        # A parent per opening; the resolution is a reply in its thread, and the parent is edited.
        assert len(parents) == sum(v for (_, k), v in lifecycle.items() if k == "firing")
        assert len(replies) == len(updates) == sum(v for (_, k), v in lifecycle.items() if k == "resolved")
        assert all(r["channel"] == "C42" for r in replies)
        assert all("RESOLVED" in u.json()["text"] for u in updates)
        assert await notifier_outbox_empty(store)


async def notifier_outbox_empty(store: DictStateStore) -> bool:
    doc = await store.load("notify.state")
    return doc is not None and doc["outbox"]["entries"] == []


async def test_repeats_come_only_after_the_interval() -> None:
    timeline = DATA / "vllm_kv_overload.jsonl.gz"
    with receiver() as rec:
        clock = FakeClock(0.0)
        notifier = Notifier([WebhookChannel(Endpoint(f"{rec.url}/hook"))], DictStateStore(), clock=clock,
                            policy=PolicyConfig(repeat_s=30, sustain_s=60))
        await replay_outputs(timeline, settings(), clock, notifier=notifier)
        await notifier.aclose()
        bodies = [r.json() for r in rec.on("/hook")]
        kinds = [b["alerts"][0]["annotations"]["notification"] for b in bodies]
        assert kinds[0] == "firing" and kinds[-1] == "resolved" and "repeat" in kinds
        assert set(kinds[1:-1]) == {"repeat"}
        # Each repeat comes no sooner than the interval after the notification before it.
        stamps = [float(r.headers["Idempotency-Key"].split(":")[-1]) for r in rec.on("/hook")]
        assert stamps == sorted(stamps)
        assert len(kinds) <= 2 + 93 // 30


async def test_a_silence_made_in_inferguard_holds() -> None:
    timeline = DATA / "vllm_prefix_churn.jsonl.gz"
    with receiver() as rec:
        store = DictStateStore()
        clock = FakeClock(0.0)
        notifier = Notifier([WebhookChannel(Endpoint(f"{rec.url}/hook"))], store, clock=clock)
        start = next(iter(read_timeline(timeline))).ts
        await add_silence(store, target="http://127.0.0.1:*", code="*", duration="1d", comment="load test",
                          now=start)
        pipeline = await replay_outputs(timeline, settings(), clock, notifier=notifier)
        await notifier.aclose()
        assert pipeline.book.history and rec.on("/hook") == []


async def test_receiver_failing_then_down_then_restart_loses_nothing_and_repeats_nothing() -> None:
    timeline = DATA / "vllm_engine_restart.jsonl.gz"
    port = free_port()
    store = DictStateStore()
    clock = FakeClock(0.0)
    url = f"http://127.0.0.1:{port}/hook"
    with receiver(port) as rec:
        rec.reply = lambda req: (500, {"error": "boom"})
        first = Notifier([WebhookChannel(Endpoint(url))], store, clock=clock, rand=lambda: 0.5)
        pipeline = await replay_outputs(timeline, settings(), clock, notifier=first)
        assert rec.attempts >= 2 and rec.requests == []  # it tried, and kept trying
        ids = [i.id for i in pipeline.book.history]
    # The receiver is gone (connection refused): still nothing lost.
    clock.now += 600
    await first.tick()
    doc = await store.load("notify.state")
    assert doc is not None
    waiting = [e["notice"]["kind"] for e in doc["outbox"]["entries"]]
    assert waiting == ["firing", "resolved"] * len(ids)
    assert "ConnectError" in doc["outbox"]["entries"][0]["last_error"]
    await first.aclose()
    # The daemon restarts mid-retry; the receiver comes back.
    with receiver(port) as rec:
        second = Notifier([WebhookChannel(Endpoint(url))], store, clock=clock, rand=lambda: 0.5)
        for _ in range(3):
            clock.now += 600
            await second.tick()
        await second.aclose()
        got = incidents_of(rec.on("/hook"))
        assert got == Counter({**{(i, "firing"): 1 for i in ids}, **{(i, "resolved"): 1 for i in ids}})
        keys = [r.headers["Idempotency-Key"] for r in rec.on("/hook")]
        assert len(keys) == len(set(keys))


async def test_rate_limit_defers_but_never_drops() -> None:
    with receiver() as rec:
        clock = FakeClock(1_800_000_000.0)
        notifier = Notifier([WebhookChannel(Endpoint(f"{rec.url}/hook"))], DictStateStore(), clock=clock,
                            rate_per_minute=2)
        for n in range(5):
            doc = {"id": f"inc-{n}", "target": f"http://e{n}/metrics", "severity": "warning", "codes": ["x"],
                   "anomalies": [{"code": "x", "active": True}], "opened_at": clock.now}
            await notifier.send({"event": "incident.opened", "changes": [], "incident": doc})
        assert len(rec.on("/hook")) == 2
        clock.now += 30
        await notifier.tick()
        assert len(rec.on("/hook")) == 3
        clock.now += 60
        await notifier.tick()
        assert len(rec.on("/hook")) == 5
        await notifier.aclose()


def test_settings_build_every_channel_and_hide_their_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERGUARD_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/very-secret")
    monkeypatch.setenv("INFERGUARD_SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("INFERGUARD_SLACK_CHANNEL", "#inference")
    monkeypatch.setenv("INFERGUARD_WEBHOOK_URL", "https://a.example/hook;bearer=tok-secret, https://u:pw@b.example/x")
    monkeypatch.setenv("INFERGUARD_ALERTMANAGER_URL", "http://127.0.0.1:9093")
    s = Settings.load(env_file=None)
    notifier = build_notifier(s, DictStateStore())
    assert notifier is not None
    assert sorted(notifier.channels) == ["alertmanager-0", "slack-bot", "slack-webhook", "webhook-0", "webhook-1"]
    shown = str(s.redacted()) + repr([vars(c) for c in notifier.channels.values()])
    for secret in ("very-secret", "tok-secret", "pw@"):
        assert secret not in str(s.redacted())
    assert "tok-secret" not in repr(notifier.channels["webhook-0"].endpoint)  # type: ignore[attr-defined]
    assert shown
