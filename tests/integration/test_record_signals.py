"""`inferguard record` stops cleanly on SIGTERM and SIGINT: exit 0, its summary line, every line readable."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inferguard.sources.timeline import read_timeline
from tests.hostile import HEALTHY
from tests.support import clean_env, serve


@pytest.mark.parametrize(("sig", "name"), [(signal.SIGTERM, "t.jsonl.gz"), (signal.SIGINT, "t.jsonl")])
def test_record_stops_cleanly_on_a_signal(tmp_path: Path, sig: signal.Signals, name: str) -> None:
    out = tmp_path / name
    with serve(lambda _: HEALTHY) as base:
        proc = subprocess.Popen([sys.executable, "-m", "inferguard", "record", base + "/metrics", "--out", str(out),
                                 "--interval", "0.1", "--duration", "120"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
                                cwd=tmp_path)
        end = time.monotonic() + 60
        while time.monotonic() < end and (not out.exists() or out.stat().st_size == 0):
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("recorded "), err
    warnings: list[str] = []
    scrapes = list(read_timeline(out, warn=warnings.append))
    assert warnings == [] and scrapes and all(s.ok for s in scrapes)
    assert f"recorded {len(scrapes)} scrapes" in err
