"""`inferguard replay --remember`, `recall` and `incidents list|show|note` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inferguard.cli_memory import parse_since

ROOT = Path(__file__).resolve().parents[2]
TIMELINE = ROOT / "tests" / "data" / "vllm_kv_overload.jsonl.gz"


def run(tmp_path: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERGUARD_", "UPSTASH_", "GMI_"))}
    env |= {"INFERGUARD_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "inferguard", *args], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def test_replay_touches_no_memory_without_remember(tmp_path: Path) -> None:
    run(tmp_path, "replay", str(TIMELINE), "--json")
    assert not (tmp_path / "state").exists()


def test_replay_remember_then_list_show_recall_and_note(tmp_path: Path) -> None:
    run(tmp_path, "replay", str(TIMELINE), "--remember", "--json")
    run(tmp_path, "replay", str(TIMELINE), "--remember", "--json")  # twice: nothing doubles
    listed = json.loads(run(tmp_path, "incidents", "list", "--json").stdout)
    assert len(listed) == 1 and listed[0]["status"] == "resolved"
    inc_id = listed[0]["id"]
    assert json.loads(run(tmp_path, "incidents", "list", "--open", "--json").stdout) == []
    assert json.loads(run(tmp_path, "incidents", "list", "--target", "http://elsewhere/metrics", "--json").stdout) == []
    shown = json.loads(run(tmp_path, "incidents", "show", inc_id, "--json").stdout)
    kinds = [e["event"] for e in shown["timeline"]]
    assert kinds[0] == "incident.opened" and kinds[-1] == "incident.resolved" and kinds.count("incident.opened") == 1
    assert shown["diagnoses"] and shown["window"]
    hits = json.loads(run(tmp_path, "recall", "KV cache full", "--json").stdout)
    assert [h["id"] for h in hits] == [inc_id]
    assert json.loads(run(tmp_path, "recall", "KV cache full", "--target", "http://x/metrics", "--json").stdout) == []
    run(tmp_path, "incidents", "note", inc_id, "--failed", "--note", "raised gpu util, no change")
    assert "fix failed" in run(tmp_path, "incidents", "show", inc_id).stdout
    missing = run(tmp_path, "incidents", "show", "inc-nope", ok=False)
    assert missing.returncode == 1 and "inc-nope" in missing.stderr


def test_a_corrupt_memory_file_is_a_clear_error_at_the_command(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "inferguard.db").write_bytes(b"garbage" * 1000)
    p = run(tmp_path, "incidents", "list", ok=False)
    assert p.returncode == 70 and "unreadable" in p.stderr and "Traceback" not in p.stderr


def test_since_durations() -> None:
    assert parse_since("2h") == 7200 and parse_since("90") == 90 and parse_since("1.5d") == 129600
    with pytest.raises(Exception, match="duration"):
        parse_since("two hours")
