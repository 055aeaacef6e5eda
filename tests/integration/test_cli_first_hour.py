"""The commands a newcomer types first, against real loopback HTTP: `--version`, help that reads like
help, `scan` with a base URL and a failure it can explain, `scan --samples`, and `record`'s progress."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import inferguard
from tests.support import Page, clean_env, free_port, run_in_pty, serve, started

PAGE = """vllm:num_requests_running{engine="0",model_name="m"} 4.0
vllm:num_requests_waiting{engine="0",model_name="m"} WAITING
vllm:kv_cache_usage_perc{engine="0",model_name="m"} KV
vllm:num_preemptions_total{engine="0",model_name="m"} 5.0
"""


def page(waiting: float = 0.0, kv: float = 0.2) -> bytes:
    return PAGE.replace("WAITING", str(waiting)).replace("KV", str(kv)).encode()


def routes(path: str) -> Page:
    if path == "/metrics":
        return page()
    if path == "/":
        return (200, b"<!DOCTYPE html><html><body>vLLM</body></html>", {"Content-Type": "text/html"})
    if path == "/v1/models":
        return (200, b'{"data": []}', {"Content-Type": "application/json"})
    if path == "/secured/metrics":
        return (401, b"unauthorized", {})
    return (404, b"not found", {})


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serve(routes) as url:
        yield url


def cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferguard", *args], capture_output=True, text=True,
                          env=clean_env(), cwd=cwd, timeout=timeout)


def test_version(tmp_path: Path) -> None:
    p = cli("--version", cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.startswith(f"inferguard {inferguard.__version__} ")


def every_command() -> list[list[str]]:
    import typer.main

    from inferguard.cli import app

    def walk(group: object, prefix: list[str]) -> list[list[str]]:
        out = [prefix]
        for name, cmd in getattr(group, "commands", {}).items():
            out += walk(cmd, [*prefix, name]) if hasattr(cmd, "commands") else [[*prefix, name]]
        return out

    return walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("command", every_command(), ids=lambda c: " ".join(c) or "inferguard")
def test_help_shows_metavars_not_python_types(command: list[str], tmp_path: Path) -> None:
    env = clean_env() | {"COLUMNS": "200", "POLL_INTERVAL_SECONDS": "30"}
    p = subprocess.run([sys.executable, "-m", "inferguard", *command, "--help"], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    for noise in ("<bool>", "<str>", "<float>", "<int>", "<list", "<path>", "{url}", "{URL}", "{file}"):
        assert noise not in p.stdout, f"{noise} in `inferguard {' '.join(command)} --help`"
    if command == ["watch"]:
        assert "[default: 30 s, from POLL_INTERVAL_SECONDS]" in " ".join(p.stdout.split())
        assert "SECONDS" in p.stdout and "HOST:PORT" in p.stdout and "[URL]..." in p.stdout


def test_scan_of_a_base_url_reads_its_metrics_path(base: str, tmp_path: Path) -> None:
    p = cli("scan", base, "--window", "0.1", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith(f"HEALTHY: {base}/metrics (vllm-v1), 2 scrape(s)")


@pytest.mark.parametrize(("path", "says"), [
    ("/nope", "HTTP 404 at /nope (nothing served there"),
    ("/secured/metrics", "HTTP 401 at /secured/metrics (authentication required"),
    ("/v1/models", "a JSON document at /v1/models, not metrics"),
])
def test_scan_says_what_happened(base: str, tmp_path: Path, path: str, says: str) -> None:
    p = cli("scan", base + path, cwd=tmp_path)
    assert p.returncode == 3
    assert p.stdout.strip() == f"UNREACHABLE: {base}{path}: " + p.stdout.split(": ", 2)[2].strip()
    assert says in p.stdout


def test_scan_of_an_html_page_and_of_nothing(tmp_path: Path) -> None:
    with serve(lambda _: (200, b"<!doctype html><html></html>", {})) as url:
        p = cli("scan", url + "/metrics", cwd=tmp_path)
    assert p.returncode == 3 and "an HTML page at /metrics, not metrics" in p.stdout
    p = cli("scan", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert p.returncode == 3 and "connection refused at 127.0.0.1:" in p.stdout


def test_scan_diagnosis_quotes_the_same_samples_as_its_anomalies(tmp_path: Path) -> None:
    seen = {"n": 0}

    def growing(path: str) -> Page:
        seen["n"] += 1
        return page(waiting=29.0 if seen["n"] == 1 else 47.0, kv=0.99)

    with serve(growing) as url:
        p = cli("scan", url, "--window", "0.2", "--json", cwd=tmp_path)
    out = json.loads(p.stdout)
    assert p.returncode == 2, out
    queue = next(a for a in out["anomalies"] if a["code"] == "queue_buildup")
    assert "47" in queue["summary"]
    quoted = [e["value"] for e in out["diagnosis"]["evidence"] if e["signal"] == "requests_waiting"]
    assert quoted == [47.0], out["diagnosis"]


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with started([sys.executable, "-m", "inferguard", "simulate", "--port", str(port), "--speed", "4"],
                 url + "/metrics", what="simulator", env=clean_env(), cwd=tmp_path_factory.mktemp("sim")):
        yield url


def test_scan_says_which_checks_need_more_samples_and_samples_make_them(simulator: str, tmp_path: Path) -> None:
    short = json.loads(cli("scan", simulator, "--window", "1", "--json", cwd=tmp_path).stdout)
    assert {"ttft_regression", "prefix_cache_regression"} <= {n["code"] for n in short["not_judged"]}
    text = cli("scan", simulator, "--window", "1", cwd=tmp_path).stdout
    assert "not judged: ttft_regression" in text and "--samples 6" in text
    full = json.loads(cli("scan", simulator, "--window", "1", "--samples", "6", "--json", cwd=tmp_path).stdout)
    assert full["samples"] == 6 and full["verdict"] == "healthy"
    judged = {"ttft_regression", "itl_regression", "prefix_cache_regression"}
    assert judged.isdisjoint(n["code"] for n in full["not_judged"]), full["not_judged"]


def test_record_shows_progress_on_a_terminal(simulator: str, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    rc, text = run_in_pty([sys.executable, "-m", "inferguard", "record", simulator, "--out", str(out),
                           "--interval", "0.3", "--duration", "2"], columns=120, cwd=str(tmp_path))
    assert rc == 0, text
    assert "recording" in text and "scrapes, 0 failed" in text and "elapsed" in text and "left" in text
    assert "recorded " in text and out.exists()


def test_record_off_a_terminal_says_what_it_does_and_what_failed(tmp_path: Path) -> None:
    stop = threading.Event()

    def flaky(path: str) -> Page:
        return page() if not stop.is_set() else (503, b"busy", {})

    with serve(flaky) as url:
        threading.Timer(0.6, stop.set).start()
        p = cli("record", url, "--out", str(tmp_path / "t.jsonl"), "--interval", "0.3", "--duration", "1.5",
                cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    first, *_, last = p.stderr.strip().splitlines()
    assert first == f"recording {url}/metrics every 0.3 s for 1.5 s to {tmp_path / 't.jsonl'}"
    assert last.startswith("recorded ") and "failed (last: HTTP 503 at /metrics" in last
