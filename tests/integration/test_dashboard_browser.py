"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against `inferguard watch`
watching the simulator: it loads, shows an incident as it opens and resolves, and logs no console errors.
Screenshots are saved under test-artifacts/ (INFERGUARD_TEST_ARTIFACTS to move them)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferguard.sinks import render
from tests.integration.api_support import wait_listening
from tests.support import clean_env, free_port

playwright = pytest.importorskip("playwright.sync_api", reason="playwright missing: scripts/test_deps.sh "
                                                                  "runs after pip install -e '.[dev]', which brings it")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: scripts/test_deps.sh installs it")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("INFERGUARD_TEST_ARTIFACTS", ROOT / "test-artifacts"))
TOKEN = "browser-test-token-0123456789"


@contextmanager
def process(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    log = open(cwd / f"{args[0]}-{free_port()}.log", "wb")  # noqa: SIM115  # closed below, after the process
    proc = subprocess.Popen([sys.executable, "-m", "inferguard", *args], cwd=cwd, env=env or clean_env(),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@contextmanager
def fleet(tmp_path: Path, targets: int, scenario: str, *, token: str | None = None, interval: str = "1"
          ) -> Iterator[tuple[str, str]]:
    """The simulator with `targets` engines and `inferguard watch` on all of them; yields (sim, dashboard)."""
    sim_port, port = free_port(), free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    urls = [f"{sim}/metrics"] + [f"{sim}/t/{i}/metrics" for i in range(1, targets)]
    env = clean_env() | ({"INFERGUARD_API_TOKEN": token} if token else {})
    with process(["simulate", "--scenario", scenario, "--targets", str(targets), "--port", str(sim_port),
                  "--speed", "5", "--seed", "3"], tmp_path), \
            process(["watch", *urls, "--interval", interval, "--listen", f"127.0.0.1:{port}"], tmp_path, env):
        wait_listening(sim_port, 60)
        wait_listening(port, 60)
        yield sim, f"http://127.0.0.1:{port}"


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def watch_console(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return errors


def until(page: Any, condition: str, timeout: float = 30) -> None:
    """Poll a JavaScript expression (wait_for_function would eval a string, which the page's CSP forbids)."""
    end = time.monotonic() + timeout
    while not page.evaluate(condition):
        if time.monotonic() > end:
            raise AssertionError(f"not true within {timeout}s: {condition}")
        page.wait_for_timeout(200)


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_dashboard_shows_an_incident_open_and_resolve(tmp_path: Path, browser: Any) -> None:
    with fleet(tmp_path, 3, "kv_pressure") as (sim, base):
        for i in (1, 2):  # two healthy neighbours beside the one under pressure
            httpx.post(f"{sim}/admin/scenario", json={"scenario": "healthy", "target": i}, timeout=10)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors = watch_console(page)
        page.goto(base + "/")
        page.wait_for_selector("#conn.live", timeout=30_000)
        until(page, "document.querySelectorAll('#targets .card').length === 3", 30)
        # The incident opens on target 0: its card, the open-incident panel with diagnosis and advisory.
        panel = page.wait_for_selector("#open .incident", timeout=120_000)
        page.wait_for_selector("#open .incident .diag", timeout=30_000)
        text = panel.inner_text()
        assert "kv_pressure" in text and "kv_cache_exhaustion" in text and "confidence" in text
        assert page.locator("#open .pill", has_text="ADVISORY").count() >= 1
        assert page.locator("#targets .card.critical, #targets .card.warning").count() >= 1
        until(page, "[...document.querySelectorAll('.card .spark-value')].some(b => b.textContent.endsWith('%'))")
        shot(page, "dashboard-incident-open.png")
        # The detail view opens from the log.
        page.click("#log tr[data-status='open']")
        page.wait_for_selector("#detail[open] .diag")
        detail = page.inner_text("#detail")
        assert "Diagnosis history" in detail and "ADVISORY" in detail and "[object" not in detail
        shot(page, "dashboard-incident-detail.png")
        page.click("#detail button")
        # A notification's link (render.incident_url) opens the page on that incident.
        inc_id = page.get_attribute("#log tr[data-status='open']", "data-incident")
        linked = browser.new_page(viewport={"width": 1440, "height": 900})
        link_errors = watch_console(linked)
        linked.goto(render.incident_url({"id": inc_id}, base))
        linked.wait_for_selector("#detail[open] .diag", timeout=30_000)
        assert "Diagnosis history" in linked.inner_text("#detail") and "#" not in linked.url[len(base):]
        assert link_errors == []
        linked.close()
        # Relief: the incident resolves, live, without a reload.
        httpx.post(f"{sim}/admin/scenario", json={"scenario": "healthy", "target": 0}, timeout=10)
        page.wait_for_selector("#log tr[data-status='resolved']", timeout=180_000)
        until(page, "document.querySelector('#open').innerText.includes('No open incidents')", 60)
        shot(page, "dashboard-incident-resolved.png")
        assert errors == []


def test_dashboard_with_a_token_asks_for_it_and_never_puts_it_in_a_url(tmp_path: Path, browser: Any) -> None:
    with fleet(tmp_path, 1, "healthy", token=TOKEN) as (_, base):
        page = browser.new_page()
        errors = watch_console(page)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(base + "/")
        page.wait_for_selector("#login-form", state="visible")
        page.fill("#token", "wrong-token-wrong-token")
        page.click("#login-form button")
        page.wait_for_selector("#login-error:not([hidden])")
        page.fill("#token", TOKEN)
        page.click("#login-form button")
        page.wait_for_selector("#conn.live", timeout=30_000)
        page.wait_for_selector("#targets .card", timeout=30_000)
        # A link with the token in the fragment works and the fragment is wiped from the address bar.
        fresh = browser.new_page()
        fresh.goto(f"{base}/#token={TOKEN}")
        fresh.wait_for_selector("#targets .card", timeout=30_000)
        assert TOKEN not in fresh.url
        assert not [u for u in requested if TOKEN in u]
        # The only console errors are the browser's own notes on the refused requests (401).
        assert [e for e in errors if "401" not in e] == []


def test_dashboard_with_50_targets_fits_a_laptop_screen(tmp_path: Path, browser: Any) -> None:
    with fleet(tmp_path, 50, "healthy", interval="2") as (_, base):
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        errors = watch_console(page)
        page.goto(base + "/")
        until(page, "document.querySelectorAll('#targets .card').length === 50", 60)
        until(page, "[...document.querySelectorAll('.card .badge')].every(b => b.textContent !== 'unknown')", 60)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.fill("#filter", "/t/4")  # narrows the grid: /t/4 and /t/40-49
        until(page, "document.querySelectorAll('#targets .card').length === 11")
        page.fill("#filter", "")
        shot(page, "dashboard-50-targets.png")
        assert errors == []
