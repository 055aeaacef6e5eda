"""Silences and the actuation audit on the API of a running `inferguard watch` (a subprocess, the simulator
as its engine, real HTTP on loopback). The receiver stands in for an Alertmanager webhook receiver."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.alerting_support import receiver
from tests.daemon_support import Watch, env_for, set_scenario, simulator
from tests.support import free_port

API_TOKEN = "api-token-for-the-test-0123456789"


def test_silences_over_the_api_hold_for_the_daemon_and_only_writes_change_them(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    with simulator(tmp_path, speed=1) as sim, receiver() as rec:
        env = env_for(tmp_path, INFERGUARD_WEBHOOK_URL=f"{rec.url}/hook", INFERGUARD_API_TOKEN=API_TOKEN)
        watch = Watch([f"{sim}/metrics", "--interval", "0.3", "--listen", f"127.0.0.1:{port}"], env, tmp_path)
        try:
            watch.wait_for(lambda: watch.events("cycle"), 20, "a cycle")
            with httpx.Client(base_url=api, timeout=5, trust_env=False) as http:
                # The token is required, for reads and writes alike.
                assert http.get("/api/silences").status_code == 401
                body = {"target": f"{sim}/*", "code": "endpoint_unreachable", "for": "1h", "comment": "maintenance"}
                assert http.post("/api/silences", json=body).status_code == 401
                assert http.get("/api/silences", headers=auth).json() == {"source": "alerting", "silences": []}
                # A form post (what a hostile page can send cross-site without a preflight) is refused.
                assert http.post("/api/silences", data=body, headers=auth).status_code == 415
                bad = http.post("/api/silences", json={**body, "for": "soon"}, headers=auth)
                assert bad.status_code == 400 and bad.json()["parameter"] == "for"
                made = http.post("/api/silences", json=body, headers=auth)
                assert made.status_code == 201, made.text
                sil = made.json()
                assert sil["created_by"] == "api" and sil["comment"] == "maintenance"
                # No GET acts: not on the silence's own path, not with any parameter.
                assert http.get(f"/api/silences/{sil['id']}", headers=auth).status_code == 405
                assert http.get("/api/silences", params={"expire": sil["id"]}, headers=auth).status_code == 400
                listed = http.get("/api/silences", headers=auth).json()["silences"]
                assert [(s["id"], s["state"]) for s in listed] == [(sil["id"], "active")]

                # The daemon holds the silence: the incident opens and nobody is paged.
                set_scenario(sim, "engine_crash")
                opened = watch.wait_for(lambda: watch.events("incident.opened"), 20, "incident.opened")[0]
                n = len(watch.events("cycle"))
                watch.wait_for(lambda: len(watch.events("cycle")) >= n + 8, 20, "cycles while silenced")
                assert rec.on("/hook") == []

                assert http.delete(f"/api/silences/{sil['id']}").status_code == 401
                gone = http.delete(f"/api/silences/{sil['id']}", headers=auth)
                assert gone.status_code == 200 and gone.json()["expired_at"] is not None
                assert http.delete(f"/api/silences/{sil['id']}", headers=auth).status_code == 404
                assert http.get("/api/silences", headers=auth).json()["silences"] == []
                everything = http.get("/api/silences", params={"all": "true"}, headers=auth).json()["silences"]
                assert [(s["id"], s["state"]) for s in everything] == [(sil["id"], "expired")]
                # The silence ended while the incident is open: it is announced now.
                hooks = watch.wait_for(lambda: rec.on("/hook"), 15, "the firing notification after the silence")
                assert hooks[0].json()["groupLabels"]["incident_id"] == opened["incident"]["id"]
                # Actuation is off: the audit says so rather than answering an empty list as if it were on.
                assert http.get("/api/actions", headers=auth).json() == {"source": "none", "actions": []}
        finally:
            assert watch.stop() == 0, watch.stderr()
    assert API_TOKEN not in "".join(watch.raw) + watch.stderr()


def test_without_a_notification_channel_silences_are_refused_not_pretended(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    engine = f"http://127.0.0.1:{free_port()}/metrics"  # nothing there: the API answers all the same
    watch = Watch([engine, "--interval", "0.5", "--listen", f"127.0.0.1:{port}"], env_for(tmp_path), tmp_path)
    try:
        watch.wait_for(lambda: watch.events("cycle"), 20, "a cycle")
        body = {"target": "*", "code": "*", "for": "1h", "comment": "x"}
        r = httpx.post(f"{api}/api/silences", json=body, timeout=5, trust_env=False)
        assert r.status_code == 409 and "no notification channel" in r.json()["error"]
        assert httpx.get(f"{api}/api/silences", timeout=5, trust_env=False).json()["source"] == "none"
    finally:
        assert watch.stop() == 0, watch.stderr()
