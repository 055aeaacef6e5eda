"""`inferguard watch` on a terminal: the live rich view instead of JSON lines (run under a real pty)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import clean_env, serve

PAGE = (b'vllm:num_requests_running{engine="0",model_name="tty-model"} 3.0\n'
        b'vllm:num_requests_waiting{engine="0",model_name="tty-model"} 0.0\n'
        b'vllm:kv_cache_usage_perc{engine="0",model_name="tty-model"} 0.42\n')


@pytest.fixture
def engine() -> Iterator[str]:
    with serve(lambda _: PAGE) as base:
        yield base + "/metrics"


def test_live_view_on_a_tty(engine: str, tmp_path: Path) -> None:
    main, sub = pty.openpty()
    env = clean_env()
    env.update(COLUMNS="160", LINES="40", TERM="xterm-256color")
    proc = subprocess.Popen([sys.executable, "-m", "inferguard", "watch", engine, "--interval", "0.3",
                             "--no-listen", "--duration", "2"], stdin=sub, stdout=sub, stderr=sub, env=env,
                            cwd=tmp_path, close_fds=True)
    os.close(sub)
    chunks = []
    end = time.monotonic() + 30
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=15)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    text = b"".join(chunks).decode("utf-8", "replace")
    assert rc == 0, text[-2000:]
    assert "InferGuard" in text and "tty-model" in text and "42%" in text
    assert '{"event"' not in text  # no JSON lines on a terminal
    assert "inferguard watch stopped: cycles=" in text  # one summary line at exit
