"""Credentials in a target URL reach the engine and nowhere else.

`inferguard watch` runs against a loopback engine that answers only with the right basic-auth user
and ``?token=``; the overloaded page opens an incident. Then every place a target is named is read:
the JSON log lines, /api/incidents, /api/targets, /metrics labels, the --record timeline, `config
show`, and the brain payload built from the incident.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from inferguard.brain.payloads import build_incident_payload
from inferguard.config import Settings
from inferguard.pipeline import Pipeline
from inferguard.sources.http import HttpScraper
from tests.hostile import vllm_page
from tests.support import Page, clean_env, free_port, serve

USER, PASSWORD, TOKEN = "scraper", "pw-SECRET-1", "tok-SECRET-2"
SECRETS = (PASSWORD, TOKEN, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
OVERLOAD = vllm_page(["m"], kv=0.99, waiting=40).encode()


def _engine(path: str, headers: dict[str, str]) -> Page:
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if headers.get("Authorization") != auth or f"token={TOKEN}" not in path:
        return (401, b"no", {})
    return OVERLOAD


def _clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} leaks a credential"


def test_watch_uses_url_credentials_and_shows_them_nowhere(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    with serve(lambda path: _engine(path, seen[-1]), seen) as base:
        url = base.replace("http://", f"http://{USER}:{PASSWORD}@") + f"/metrics?token={TOKEN}&format=text"
        port = free_port()
        record = tmp_path / "seen.jsonl"
        env = clean_env() | {"TARGET_ENDPOINT": url}
        proc = subprocess.Popen(
            [sys.executable, "-m", "inferguard", "watch", "--interval", "0.3", "--listen", f"127.0.0.1:{port}",
             "--record", str(record)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        try:
            api = f"http://127.0.0.1:{port}"
            incidents: list[dict[str, object]] = []
            end = time.monotonic() + 30
            while not incidents and time.monotonic() < end:
                time.sleep(0.3)
                try:
                    incidents = httpx.get(api + "/api/incidents", timeout=2).json()["incidents"]
                except httpx.HTTPError:
                    continue
            assert incidents, "no incident opened: the credentials did not reach the engine"
            targets = httpx.get(api + "/api/targets", timeout=2).text
            metrics = httpx.get(api + "/metrics", timeout=2).text
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
    assert incidents[0]["target"] == base + "/metrics?token=REDACTED&format=text"
    assert 'result="ok"' in metrics  # the scrapes succeeded, with the credentials
    for text, where in ((json.dumps(incidents), "/api/incidents"), (targets, "/api/targets"),
                        (metrics, "/metrics"), (out, "the log"), (err, "stderr"),
                        (record.read_text(), "the --record timeline")):
        _clean(text, where)
    shown = subprocess.run([sys.executable, "-m", "inferguard", "config", "show"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    _clean(shown, "config show")
    assert "REDACTED" in shown


async def test_brain_payloads_name_the_safe_url() -> None:
    with serve(lambda path: OVERLOAD if f"token={TOKEN}" in path else (401, b"", {})) as base:
        env_before = os.environ.get("TARGET_ENDPOINT")
        settings = Settings.load(env_file=None)
        target = settings.target_list([base + f"/metrics?token={TOKEN}"])[0]
        assert env_before == os.environ.get("TARGET_ENDPOINT")
        pipeline = Pipeline([target])
        scraper = HttpScraper()
        try:
            for _ in range(3):
                obs = pipeline.observe(await scraper.scrape(target))
                assert obs.error is None
        finally:
            await scraper.aclose()
    (inc,) = pipeline.book.open_incidents()
    payload = build_incident_payload(inc.to_dict(), pipeline.window(inc.target, inc.model), [])
    _clean(json.dumps(payload), "the brain payload")
    assert base + "/metrics?token=REDACTED" in json.dumps(payload)
