"""What `inferguard watch` sends out, as an operator runs it: a subprocess against the simulator or a
played-back real-vLLM timeline, over real loopback HTTP.

The receiver (tests/alerting_support.py) stands in for Alertmanager webhook receivers and the actuation
endpoint: it speaks their HTTP protocol and records what it gets.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferguard.config import Settings
from inferguard.models import Target
from inferguard.runtime.build import build_daemon
from inferguard.runtime.daemon import DaemonOptions
from tests.alerting_support import Request, receiver
from tests.daemon_support import Watch, env_for, playback, playback_with_api, set_scenario, simulator
from tests.integration.test_alertmanager import alertmanager, am_alerts, am_hook  # noqa: F401 (fixtures)
from tests.support import free_port

DATA = Path(__file__).resolve().parents[1] / "data"

TOKEN = "hook-bearer-s3cret"


def test_watch_pages_once_when_an_incident_opens_and_once_when_it_resolves(tmp_path: Path) -> None:
    with simulator(tmp_path, speed=1) as sim, receiver() as rec:
        # The receiver refuses the first resolved notification: no event follows a resolve, so it then
        # arrives only through the retry that the daemon's periodic tick of the notifier makes.
        refused: list[str] = []

        def reply(req: Request) -> tuple[int, dict[str, bool]]:
            if req.json()["status"] == "resolved" and not refused:
                refused.append(req.path)
                return 500, {"ok": False}
            return 200, {"ok": True}

        rec.reply = reply
        env = env_for(tmp_path, INFERGUARD_WEBHOOK_URL=f"{rec.url}/hook;bearer={TOKEN}")
        watch = Watch([f"{sim}/metrics", "--interval", "0.3", "--no-listen"], env, tmp_path)
        try:
            (started,) = watch.wait_for(lambda: watch.events("watch.started"), 20, "watch.started")
            watch.wait_for(lambda: len(watch.events("cycle")) >= 3, 20, "healthy cycles")
            set_scenario(sim, "engine_crash")
            opened = watch.wait_for(lambda: watch.events("incident.opened"), 20, "incident.opened")[0]["incident"]
            watch.wait_for(lambda: rec.on("/hook"), 15, "the firing notification")
            n = len(watch.events("cycle"))
            watch.wait_for(lambda: len(watch.events("cycle")) >= n + 6, 20, "cycles while it stays open")
            set_scenario(sim, "healthy")
            watch.wait_for(lambda: [e for e in watch.events("incident.resolved")
                                    if e["incident"]["id"] == opened["id"]], 30, "incident.resolved")
            watch.wait_for(lambda: len(rec.on("/hook")) >= 2, 15, "the resolved notification")
            n = len(watch.events("cycle"))
            watch.wait_for(lambda: len(watch.events("cycle")) >= n + 6, 20, "cycles after the resolve")
        finally:
            assert watch.stop() == 0, watch.stderr()
    assert started["notify"] == ["webhook-0"]  # names only: the URL carries a token
    assert started["actuation"] == "off" and started["probes"] == "off"
    log = "".join(watch.raw) + watch.stderr()
    assert TOKEN not in log, log
    assert refused and rec.attempts == len(rec.on("/hook")) + 1  # the refused one, retried
    # ... and the operator saw the failed delivery in the daemon's own log.
    (retry,) = watch.events("notify.retry")
    assert retry["level"] == "warning" and "HTTP 500" in retry["detail"] and "webhook-0" in retry["detail"]
    heard: Counter[tuple[str, str]] = Counter()
    for r in rec.on("/hook"):
        body = r.json()
        assert r.headers["Authorization"] == f"Bearer {TOKEN}"
        heard[(body["groupLabels"]["incident_id"], body["alerts"][0]["annotations"]["notification"])] += 1
    # Exactly one firing and one resolved for the incident, whatever number of cycles it stayed open; and
    # nothing for any other incident than those the daemon opened.
    assert heard[(opened["id"], "firing")] == 1 and heard[(opened["id"], "resolved")] == 1
    ids = {e["incident"]["id"] for e in watch.events("incident.opened")}
    assert {i for i, _ in heard} <= ids
    assert all(k in ("firing", "resolved") for _, k in heard)


def state_doc(tmp_path: Path, key: str) -> dict[str, Any]:
    """A document of the daemon's incident memory (the embedded SQLite store in its state directory)."""
    db = tmp_path / "state" / "inferguard.db"
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db) as c:
            row = c.execute("SELECT doc FROM state WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError as exc:  # read while the daemon was still creating its schema
        if "no such table" not in str(exc):
            raise
        return {}
    return json.loads(row[0]) if row else {}


@pytest.mark.parametrize("mode", ["dry_run", "off"])
def test_watch_actuation_dry_run_records_its_decisions_and_off_does_nothing(tmp_path: Path, mode: str) -> None:
    # A real vLLM's pages (KV overload, then recovery), one per scrape; not simulator data, which the gate
    # refuses to act on.
    with playback(DATA / "vllm_kv_overload.jsonl.gz", start=12) as engine, receiver() as rec:
        env = env_for(tmp_path, INFERGUARD_ACTUATION_MODE=mode, INFERGUARD_ACTUATION_ENDPOINT=f"{rec.url}/act",
                      INFERGUARD_ACTUATION_ALLOWLIST="throttle_concurrency",
                      INFERGUARD_ACTUATION_SECRET="a-long-enough-test-secret")
        port = free_port()
        watch = Watch([engine, "--interval", "0.3", "--listen", f"127.0.0.1:{port}"], env, tmp_path)
        try:
            (started,) = watch.wait_for(lambda: watch.events("watch.started"), 20, "watch.started")
            opened = watch.wait_for(lambda: [e for e in watch.events("incident.opened")
                                             if "kv_pressure" in e["incident"]["codes"]], 40, "kv_pressure")
            assert any(a["action"] == "throttle_concurrency" for a in opened[0]["incident"]["advisories"])
            if mode == "dry_run":
                watch.wait_for(lambda: state_doc(tmp_path, "actuation.audit"), 15, "an audit entry")
            else:
                n = len(watch.events("cycle"))
                watch.wait_for(lambda: len(watch.events("cycle")) >= n + 6, 20, "cycles after the opening")
            inc = opened[0]["incident"]["id"]
            api = httpx.get(f"http://127.0.0.1:{port}/api/actions", params={"incident": inc}, timeout=5).json()
            detail = httpx.get(f"http://127.0.0.1:{port}/api/incidents/{inc}", timeout=5).json()
        finally:
            assert watch.stop() == 0, watch.stderr()
    assert rec.attempts == 0  # neither dry_run nor off sends anything
    audit = state_doc(tmp_path, "actuation.audit").get("entries", [])
    ignored = {e["setting"]: e["why"] for e in watch.events("settings.ignored")}
    assert "a-long-enough-test-secret" not in "".join(watch.raw)
    if mode == "off":
        assert started["actuation"] == "off" and audit == []
        # Set but without effect: said at start, so "off" is never a surprise.
        assert {k for k, v in ignored.items() if "MODE is off" in v} == {
            "INFERGUARD_ACTUATION_ENDPOINT", "INFERGUARD_ACTUATION_ALLOWLIST", "INFERGUARD_ACTUATION_SECRET"}
        assert api == {"source": "none", "actions": []} and detail["actions_source"] == "none"
        return
    assert started["actuation"] == "dry_run (throttle_concurrency)"
    # The API serves the audit from the daemon's state, the incident's own entries on its detail too.
    # (Both read while it ran: a prefix of the final audit, which the dry run decision already led.)
    mine = [e for e in audit if e["incident"] == inc]
    assert api["source"] == "actuation" and api["actions"] == mine[:len(api["actions"])]
    assert any(e["outcome"] == "dry_run" for e in api["actions"])
    assert detail["actions_source"] == "actuation" and detail["actions"] == mine[:len(detail["actions"])]
    dry = [e for e in audit if e["outcome"] == "dry_run"]
    assert [(e["action"], e["incident"]) for e in dry] == [("throttle_concurrency", inc)]  # offered once
    assert dry[0]["would_send"]["action"] == "throttle_concurrency" and dry[0]["mode"] == "dry_run"
    assert [e["detail"].split()[0] for e in watch.events("actuation.dry_run")] == ["action=throttle_concurrency"]
    # Every other advisory was refused, and says why (not allowlisted).
    assert all(e["outcome"] == "denied" and "ALLOWLIST" in e["reason"] for e in audit if e not in dry)


def audit_entries(tmp_path: Path, outcome: str) -> list[dict[str, Any]]:
    return [e for e in state_doc(tmp_path, "actuation.audit").get("entries", []) if e["outcome"] == outcome]


@pytest.mark.parametrize("api_up", [True, False], ids=["probe-answers", "probe-endpoint-dead"])
def test_watch_verifies_a_live_action_with_a_canary_probe(tmp_path: Path, api_up: bool) -> None:
    # A real vLLM's pages (the gate refuses simulator incidents) on an engine whose OpenAI API is the
    # simulator's, relayed as it streams; or, dead, a closed port behind the relay (HTTP 502).
    secret = "a-long-enough-test-secret"
    with simulator(tmp_path) as sim, receiver() as rec:
        api = sim if api_up else f"http://127.0.0.1:{free_port()}"
        with playback_with_api(DATA / "vllm_kv_overload.jsonl.gz", api, start=12) as engine:
            env = env_for(tmp_path, INFERGUARD_ACTUATION_MODE="live", INFERGUARD_ACTUATION_ENDPOINT=f"{rec.url}/act",
                          INFERGUARD_ACTUATION_ALLOWLIST="throttle_concurrency", INFERGUARD_ACTUATION_SECRET=secret,
                          INFERGUARD_ACTUATION_VERIFY_DELAY="1", INFERGUARD_PROBE_EVERY="3600",
                          INFERGUARD_PROBE_TIMEOUT_SECONDS="10", INFERGUARD_PROBE_MAX_TOKENS="4")
            watch = Watch([engine, "--interval", "0.5", "--no-listen"], env, tmp_path)
            try:
                (verified,) = watch.wait_for(lambda: audit_entries(tmp_path, "verified"), 60, "a verification")
                resolved = watch.wait_for(lambda: [e["incident"] for e in watch.events("incident.resolved")
                                                   if e["incident"]["id"] == verified["incident"]], 60, "resolved")
            finally:
                assert watch.stop() == 0, watch.stderr()
    (sent,) = audit_entries(tmp_path, "sent")
    assert len(rec.on("/act")) == 1 and sent["key"] == verified["key"]
    probe = verified["probe"]
    assert set(probe) == {"ok", "ran", "status", "ttft_s", "tpot_s", "error"}
    if api_up:
        assert probe["ok"] is True and probe["ran"] is True and probe["status"] == 200 and probe["error"] is None
        assert probe["ttft_s"] > 0 and probe["tpot_s"] is not None
        # A probe that answered leaves the signals' verdict as it is.
        assert verified["verification"] == verified["signals_verdict"]
    else:
        assert probe["ok"] is False and probe["ran"] is True and probe["ttft_s"] is None
        assert "HTTP 502" in probe["error"]  # found out asking /v1/models, before the request itself
        # Users get errors after the action: "worse", whatever the signals say.
        assert verified["verification"] == "worse"
    # The outcome landed on the incident itself (its resolved document carries it), not only in the audit.
    on_incident = [a for a in resolved[0]["actions"] if a["outcome"] == "verified"]
    assert on_incident == [{k: verified[k] for k in on_incident[0]}] and on_incident[0]["probe"] == probe
    assert secret not in "".join(watch.raw)


def test_watch_probes_each_target_on_its_schedule(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    port = free_port()
    with simulator(tmp_path) as sim:
        env = env_for(tmp_path, INFERGUARD_PROBE_EVERY="1", INFERGUARD_PROBE_TIMEOUT_SECONDS="5",
                      INFERGUARD_PROBE_MAX_TOKENS="4")
        watch = Watch([f"{sim}/metrics", dead, "--interval", "0.5", "--listen", f"127.0.0.1:{port}"], env, tmp_path)
        try:
            (started,) = watch.wait_for(lambda: watch.events("watch.started"), 20, "watch.started")
            # Two rounds of probes: the schedule repeats.
            watch.wait_for(lambda: len(watch.events("probe")) >= 2, 30, "two successful probes of the simulator")
            watch.wait_for(lambda: watch.events("probe.failed"), 20, "a failed probe of the dead target")
            status = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=5).json()
            own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        finally:
            assert watch.stop() == 0, watch.stderr()
    assert started["probes"] == "every 1s"
    ok = watch.events("probe")
    assert all(e["ok"] and e["ran"] and e["ttft_s"] > 0 and e["tokens"] >= 1 for e in ok)
    assert ok[1]["ts"] - ok[0]["ts"] >= 0.9  # a schedule, not a burst
    failed = watch.events("probe.failed")[0]
    assert failed["target"] == dead and failed["ran"] and not failed["ok"] and failed["error"]
    assert failed["level"] == "warning"  # a failing probe is what an operator must see
    by_target = {t["target"]: t["probe"] for t in status["targets"]}
    assert by_target[f"{sim}/metrics"]["ok"] is True and by_target[dead]["ok"] is False
    assert f'inferguard_probes_total{{outcome="ok",target="{sim}/metrics"}}' in own
    assert f'inferguard_probe_ttft_seconds{{target="{sim}/metrics"}}' in own


def test_a_restart_neither_repeats_nor_loses_a_notification(tmp_path: Path) -> None:
    # The notifier's state lives in the daemon's incident memory: an incident announced before a restart
    # is not announced again after it, and its resolution still goes out.
    with simulator(tmp_path, speed=1) as sim, receiver() as rec:
        env = env_for(tmp_path, INFERGUARD_WEBHOOK_URL=f"{rec.url}/hook")
        args = [f"{sim}/metrics", "--interval", "0.3", "--no-listen"]
        first = Watch(args, env, tmp_path)
        try:
            first.wait_for(lambda: first.events("cycle"), 20, "a cycle")
            set_scenario(sim, "engine_crash")
            opened = first.wait_for(lambda: first.events("incident.opened"), 20, "incident.opened")[0]["incident"]
            first.wait_for(lambda: rec.on("/hook"), 15, "the firing notification")
        finally:
            assert first.stop() == 0, first.stderr()
        second = Watch(args, env, tmp_path)
        try:
            second.wait_for(lambda: second.events("memory.restored"), 20, "memory.restored")
            n = len(second.events("cycle"))
            second.wait_for(lambda: len(second.events("cycle")) >= n + 6, 20, "cycles after the restart")
            set_scenario(sim, "healthy")
            second.wait_for(lambda: second.events("incident.resolved"), 30, "incident.resolved")
            second.wait_for(lambda: len(rec.on("/hook")) >= 2, 15, "the resolved notification")
            n = len(second.events("cycle"))
            second.wait_for(lambda: len(second.events("cycle")) >= n + 4, 20, "cycles after the resolve")
        finally:
            assert second.stop() == 0, second.stderr()
    assert not second.events("incident.opened")  # the same incident, restored
    kinds = [(r.json()["groupLabels"]["incident_id"], r.json()["status"]) for r in rec.on("/hook")]
    assert kinds == [(opened["id"], "firing"), (opened["id"], "resolved")]


def test_watch_keeps_a_real_alertmanager_alert_firing_then_resolves_it(
        tmp_path: Path, alertmanager: str) -> None:  # noqa: F811 (the fixture imported above)
    # Alertmanager expires an alert at its endsAt (four re-send periods ahead): it stays active only if the
    # daemon's tick keeps re-sending it, and goes once the incident resolves.
    with simulator(tmp_path, speed=1) as sim:  # the crash lasts 20 s: longer than the check below
        env = env_for(tmp_path, INFERGUARD_ALERTMANAGER_URL=alertmanager, INFERGUARD_ALERTMANAGER_RESEND_SECONDS="1")
        watch = Watch([f"{sim}/metrics", "--interval", "0.3", "--no-listen"], env, tmp_path)
        try:
            watch.wait_for(lambda: watch.events("cycle"), 20, "a cycle")
            set_scenario(sim, "engine_crash")
            opened = watch.wait_for(lambda: watch.events("incident.opened"), 20, "incident.opened")[0]["incident"]
            (alert,) = watch.wait_for(lambda: am_alerts(alertmanager, opened["id"]), 15, "the alert in Alertmanager")
            assert alert["status"]["state"] == "active" and alert["labels"]["incident_id"] == opened["id"]
            time.sleep(8)  # twice the endsAt horizon of one push
            assert [a["status"]["state"] for a in am_alerts(alertmanager, opened["id"])] == ["active"]
            assert not watch.events("incident.resolved")  # still open when checked
            set_scenario(sim, "healthy")
            watch.wait_for(lambda: watch.events("incident.resolved"), 30, "incident.resolved")
            watch.wait_for(lambda: am_alerts(alertmanager, opened["id"]) == [], 15, "the alert resolved")
        finally:
            assert watch.stop() == 0, watch.stderr()


async def test_outputs_are_built_from_settings_and_never_for_demo_or_serve(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERGUARD_STATE_DIR", str(tmp_path / "state"))
    settings = Settings.load(env_file=None, notify={"webhook_url": f"http://127.0.0.1:{free_port()}/hook"},
                             actuation={"mode": "dry_run", "allowlist": "throttle_concurrency"}, probe={"every": 30})
    target = [Target(url=f"http://127.0.0.1:{free_port()}/metrics")]

    async def parts(**kw: Any) -> tuple[set[str], int, dict[str, Any]]:
        options = DaemonOptions(interval_s=0.2, listen=None, duration_s=0.5, out=io.StringIO())
        d = build_daemon(settings, target, options, **kw)
        await d.run()  # and closes everything it built
        return {s.name for s in d.parts.fanout.sinks}, len(d.parts.probes), d.parts.startup

    sinks, probes, startup = await parts()
    assert {"notify", "actuation"} <= sinks and probes == 1
    assert (startup["notify"], startup["actuation"], startup["probes"]) == (
        ["webhook-0"], "dry_run (throttle_concurrency)", "every 30s")
    # `inferguard demo` (synthetic incidents) and `inferguard serve` build none of them.
    sinks, probes, startup = await parts(outputs=False)
    assert not {"notify", "actuation"} & sinks and probes == 0
    assert (startup["notify"], startup["actuation"], startup["probes"]) == ("off", "off", "off")
