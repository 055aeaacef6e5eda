"""The HTTP surface under abuse and misconfiguration: half-sent requests, too few descriptors, a taken
port, a public bind without a token. Every loop here is bounded in count and time; all on loopback."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from inferguard.api import ApiOptions, check_bind, parse_listen
from inferguard.config import Settings
from inferguard.errors import ConfigError
from tests.integration.api_support import replayed_model, running, wait_listening
from tests.support import clean_env, free_port, serve


def half_sent(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
        socks.append(s)
    return socks


def closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        return s.recv(1024) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def test_half_sent_requests_are_cut_and_never_starve_the_probe() -> None:
    model, _ = replayed_model()
    with running(model, max_connections=16, header_timeout_s=1.0) as (base, _, log):
        port = int(base.rsplit(":", 1)[1])
        socks = half_sent(port, 60)
        try:
            # Past the cap the oldest idle connection makes room: the probe always gets in.
            for _ in range(3):
                assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            # The cap was hit and said so once, not once per connection.
            capped = log.events("server.connections_capped")
            assert len(capped) == 1 and capped[0]["cap"] == 16
            # The newest half-sent one is still open, and closed by the header deadline.
            assert closed_by_server(socks[-1], within=10)
        finally:
            for s in socks:
                s.close()


def test_a_kept_alive_connection_gets_a_header_deadline_too() -> None:
    model, _ = replayed_model()
    with running(model, header_timeout_s=1.0) as (base, _, _):
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            first = b""
            while not first.endswith(b"}"):  # the whole JSON response, headers and body
                chunk = s.recv(4096)
                assert chunk, "closed early"
                first += chunk
            assert first.startswith(b"HTTP/1.1 200")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the second one stalls
            assert closed_by_server(s, within=4)  # well before the 5 s keep-alive timeout


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200, reason="the client needs 900+ fds")
def test_watch_with_128_descriptors_survives_800_half_sent_requests(tmp_path: Path) -> None:
    port = free_port()
    with serve(lambda _: b"# no metrics\n") as engine:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inferguard", "watch", f"{engine}/metrics", "--interval", "0.5",
             "--listen", f"127.0.0.1:{port}", "--duration", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env() | {"INFERGUARD_LOG_FORMAT": "json"},
            cwd=tmp_path, preexec_fn=_limit_fds)
        socks: list[socket.socket] = []
        try:
            wait_listening(port, 30)
            for _ in range(800):
                try:
                    socks.extend(half_sent(port, 1))
                except OSError:
                    break  # the server may refuse outright; that is fine, starving the probe is not
            ok = 0
            for _ in range(5):
                with contextlib.suppress(httpx.HTTPError):
                    ok += httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            assert ok >= 4, f"/healthz answered {ok} of 5 times"
        finally:
            for s in socks:
                s.close()
            proc.terminate()
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert b"Traceback" not in err and len(err) < 10_000, err[-2000:]
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith(b"{")]
    assert events.count("server.connections_capped") <= 1


def test_a_taken_port_is_one_line_naming_address_and_reason(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with serve(lambda _: b"# no metrics\n") as engine:
            p = subprocess.run([sys.executable, "-m", "inferguard", "watch", f"{engine}/metrics", "--interval",
                                "0.5", "--listen", f"127.0.0.1:{port}", "--duration", "1.5"],
                               capture_output=True, text=True, env=clean_env() | {"INFERGUARD_LOG_FORMAT": "json"},
                               cwd=tmp_path, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr
    (failed,) = [json.loads(x) for x in p.stdout.splitlines() if '"server.failed"' in x]
    assert failed["listen"] == f"127.0.0.1:{port}"
    assert failed["error"] == f"cannot listen on 127.0.0.1:{port}: Address already in use (errno 98)"


@pytest.mark.parametrize("listen", ["0.0.0.0:9464", "[::]:9464", "10.1.2.3:9464", "inferguard.example:9464"])
def test_a_non_loopback_bind_needs_a_token(listen: str) -> None:
    with pytest.raises(ConfigError, match="INFERGUARD_API_TOKEN") as info:
        check_bind(parse_listen(listen), token_set=False)
    assert info.value.setting == "INFERGUARD_LISTEN"
    check_bind(parse_listen(listen), token_set=True)


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "localhost:9464", "[::1]:9464", "127.0.0.2:1"])
def test_loopback_needs_no_token(listen: str) -> None:
    check_bind(parse_listen(listen), token_set=False)


def test_watch_refuses_a_public_bind_without_token_at_start(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "inferguard", "watch", "http://127.0.0.1:9/metrics", "--listen",
                        "0.0.0.0:9464", "--duration", "1"], capture_output=True, text=True, env=clean_env(),
                       cwd=tmp_path, timeout=60)
    assert p.returncode == 64 and p.stdout == ""
    assert "--listen: 0.0.0.0:9464 is not a loopback address; set INFERGUARD_API_TOKEN" in p.stderr
    env = clean_env() | {"INFERGUARD_LISTEN": "0.0.0.0:9464"}
    p = subprocess.run([sys.executable, "-m", "inferguard", "watch", "http://127.0.0.1:9/metrics", "--duration",
                        "1"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert p.returncode == 64 and "INFERGUARD_LISTEN: 0.0.0.0:9464 is not a loopback" in p.stderr


def test_a_short_token_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INFERGUARD_API_TOKEN", "short")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert info.value.setting == "INFERGUARD_API_TOKEN" and "short" not in str(info.value)


def test_options_from_settings_carry_the_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INFERGUARD_API_TOKEN", "x" * 20)
    monkeypatch.setenv("INFERGUARD_API_MAX_CONNECTIONS", "7")
    opts = ApiOptions.from_settings(Settings.load().server, "0.0.0.0:9464")
    assert opts.max_connections == 7 and opts.token == "x" * 20 and opts.guard().hosts is None
    monkeypatch.setenv("INFERGUARD_API_ALLOWED_HOSTS", "inferguard.monitoring.svc")
    assert ApiOptions.from_settings(Settings.load().server, "0.0.0.0:9464").guard().hosts == {
        "inferguard.monitoring.svc"}
