"""`inferguard watch` on a terminal: the live rich view instead of JSON lines, under a real pty at 80 and
at 160 columns, with a named target, an unnamed one, one that answers 404, and a hostile model name."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Page, clean_env, run_in_pty, serve

PAGE = (b'vllm:num_requests_running{engine="0",model_name="tty-model"} 3.0\n'
        b'vllm:num_requests_waiting{engine="0",model_name="tty-model"} 0.0\n'
        b'vllm:kv_cache_usage_perc{engine="0",model_name="tty-model"} 0.42\n')
# Text from a target must never be taken for rich markup (a crash, or a style eating the name).
HOSTILE = PAGE.replace(b"tty-model", b"[/]evil[bold]")


def route(path: str) -> Page:
    if path == "/a/metrics":
        return PAGE
    if path == "/b/metrics":
        return HOSTILE
    return (404, b"not found", {})


@pytest.fixture
def engine() -> Iterator[str]:
    with serve(route) as base:
        yield base


@pytest.mark.parametrize("columns", [80, 160])
def test_live_view_on_a_tty(engine: str, tmp_path: Path, columns: int) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text(f"- url: {engine}/a/metrics\n  name: prod-a\n- url: {engine}/b/metrics\n"
                       f"- url: {engine}/gone/metrics\n  name: gone\n")
    env = clean_env() | {"INFERGUARD_TARGETS_FILE": str(targets)}
    env.pop("TARGET_ENDPOINT", None)
    rc, text = run_in_pty([sys.executable, "-m", "inferguard", "watch", "--interval", "0.3", "--no-listen",
                           "--duration", "3"], columns=columns, cwd=str(tmp_path), env=env)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)  # colours and cursor moves, not content
    assert rc == 0, text[-3000:]
    assert "InferGuard" in text and "prod-a" in text and "42%" in text
    assert "down: HTTP 404" in text and "gone: HTTP 404 at /gone/metrics" in text
    assert "inferguard watch: targets 3; first_targets prod-a" in text  # the start-up line, on screen
    assert '{"event"' not in text  # no JSON lines on a terminal
    assert ".py:" not in text  # no source-file links on event lines
    assert "http:…" not in text and "criti…" not in text
    assert "127.0.0.1:" in text and "/b " in text  # the unnamed target: the shortest part that tells it apart
    if columns == 80:
        assert "engine" not in text.split("InferGuard", 1)[1].split("\n", 3)[1]  # engine column dropped
    else:
        assert "tty-model" in text and "vllm-v1" in text
        assert "[/]evil[bold]" in text  # shown literally
    assert "inferguard watch stopped: cycles=" in text  # one summary line at exit
