"""A real Alertmanager (Debian's prometheus-alertmanager) on a loopback port receives InferGuard's alerts:
its own API shows an incident's alert firing, then resolved (and its webhook says so); an InferGuard
silence holds."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferguard.config import Settings
from inferguard.runtime.oneshot import replay_outputs
from inferguard.sinks import AlertmanagerChannel, Endpoint, Notifier, add_silence
from inferguard.sources.timeline import read_timeline
from inferguard.testing import FakeClock
from tests.alerting_support import DictStateStore, Receiver, receiver
from tests.support import free_port, started

DATA = Path(__file__).resolve().parents[1] / "data"
BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
def am_hook() -> Iterator[Receiver]:
    with receiver() as rec:
        yield rec


@pytest.fixture
def alertmanager(tmp_path: Path, am_hook: Receiver) -> Iterator[str]:
    if BINARY is None:
        pytest.skip("prometheus-alertmanager is not installed (scripts/test_deps.sh installs it)")
    port = free_port()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(json.dumps({  # YAML is a superset of JSON
        "route": {"receiver": "rec", "group_by": ["incident_id"], "group_wait": "1s", "group_interval": "1s",
                  "repeat_interval": "1h"},
        "receivers": [{"name": "rec", "webhook_configs": [{"url": f"{am_hook.url}/am", "send_resolved": True}]}],
    }))
    base = f"http://127.0.0.1:{port}"
    with started([BINARY, f"--config.file={cfg}", f"--storage.path={tmp_path / 'data'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                 f"{base}/-/ready", what="alertmanager"):
        yield base


def am_alerts(base: str, incident_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/api/v2/alerts", params={"filter": f'incident_id="{incident_id}"'}, timeout=5)
    r.raise_for_status()
    return list(r.json())


def wait_for(pred: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    return pred()


async def test_alertmanager_shows_firing_then_resolved(alertmanager: str, am_hook: Receiver) -> None:
    timeline = DATA / "vllm_kv_overload.jsonl.gz"
    clock = FakeClock(0.0)
    channel = AlertmanagerChannel(Endpoint(alertmanager), resend_every=60)
    notifier = Notifier([channel], DictStateStore(), clock=clock)
    seen: dict[str, Any] = {}

    async def check(obs: Any) -> None:
        for ev in obs.events:
            if ev.kind == "opened":
                # Alertmanager's own API: the alert is there, active, with our labels.
                alerts = am_alerts(alertmanager, ev.incident.id)
                seen["firing"] = alerts

    pipeline = await replay_outputs(timeline, Settings.load(env_file=None), clock, notifier=notifier,
                                    on_observation=check)
    await notifier.aclose()
    (incident,) = pipeline.book.history
    (alert,) = seen["firing"]
    assert alert["status"]["state"] == "active"
    assert alert["labels"]["alertname"] == "InferGuardIncident" and alert["labels"]["severity"] == "critical"
    assert "kv_pressure" in alert["annotations"]["codes"]
    # Resolved: Alertmanager drops it from its active alerts and tells its own receivers "resolved".
    assert wait_for(lambda: am_alerts(alertmanager, incident.id) == []) is True
    statuses = wait_for(lambda: [r.json()["status"] for r in am_hook.on("/am")
                                 if r.json()["groupLabels"].get("incident_id") == incident.id
                                 and r.json()["status"] == "resolved"])
    assert statuses == ["resolved"]
    firing = [r.json() for r in am_hook.on("/am") if r.json()["status"] == "firing"]
    assert firing and firing[0]["alerts"][0]["labels"]["incident_id"] == incident.id


async def test_open_alert_is_resent_while_firing(alertmanager: str) -> None:
    clock = FakeClock(1_800_000_000.0)
    channel = AlertmanagerChannel(Endpoint(alertmanager), resend_every=60)
    notifier = Notifier([channel], DictStateStore(), clock=clock)
    doc = {"id": "inc-resend-1", "target": "http://e/metrics", "model": "m", "severity": "warning",
           "codes": ["queue_buildup"], "anomalies": [{"code": "queue_buildup", "active": True}],
           "opened_at": time.time()}
    await notifier.send({"event": "incident.opened", "changes": [], "incident": doc})
    first = am_alerts(alertmanager, "inc-resend-1")[0]["endsAt"]
    clock.now += 59
    await notifier.tick()
    assert am_alerts(alertmanager, "inc-resend-1")[0]["endsAt"] == first
    time.sleep(1.1)  # endsAt is Alertmanager's wall-clock expiry; let it move
    clock.now += 1
    await notifier.tick()
    assert am_alerts(alertmanager, "inc-resend-1")[0]["endsAt"] > first
    await notifier.aclose()


async def test_a_silence_made_in_inferguard_holds_in_alertmanager(alertmanager: str, am_hook: Receiver) -> None:
    clock = FakeClock(0.0)
    store = DictStateStore()
    kv, prefix = DATA / "vllm_kv_overload.jsonl.gz", DATA / "vllm_prefix_churn.jsonl.gz"
    start = next(iter(read_timeline(prefix))).ts
    target = next(iter(read_timeline(prefix))).target
    await add_silence(store, target=target, code="*", duration="2h", comment="known churn test", now=start)
    notifier = Notifier([AlertmanagerChannel(Endpoint(alertmanager))], store, clock=clock)
    settings = Settings.load(env_file=None)
    silenced = await replay_outputs(prefix, settings, clock, notifier=notifier)
    heard = await replay_outputs(kv, settings, clock, notifier=notifier)
    await notifier.aclose()
    # Alertmanager heard of the unsilenced incident, and never of the silenced one.
    heard_id, silenced_id = heard.book.history[0].id, silenced.book.history[0].id
    ids = wait_for(lambda: {r.json()["groupLabels"].get("incident_id") for r in am_hook.on("/am")} or None)
    assert heard_id in ids and silenced_id not in ids
    assert am_alerts(alertmanager, silenced_id) == []
