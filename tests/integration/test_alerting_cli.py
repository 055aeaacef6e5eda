"""The alerting commands as an operator runs them: silences shared through the state directory, and
`replay --notify` sending what a recorded incident would have sent (and plain replay sending nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.alerting_support import receiver
from tests.support import clean_env

DATA = Path(__file__).resolve().parents[1] / "data"


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferguard", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_silence_add_list_expire(tmp_path: Path) -> None:
    env = clean_env() | {"INFERGUARD_STATE_DIR": str(tmp_path / "state")}
    p = run(["silence", "add", "--target", "http://vllm-*", "--code", "kv_pressure", "--for", "2h",
             "--comment", "load test"], env, tmp_path)
    assert p.returncode == 0, p.stderr
    sil = json.loads(p.stdout)
    assert sil["ends_at"] - sil["starts_at"] == 7200
    listed = [json.loads(line) for line in run(["silence", "list"], env, tmp_path).stdout.splitlines()]
    assert [s["id"] for s in listed] == [sil["id"]] and listed[0]["state"] == "active"
    assert run(["silence", "expire", sil["id"]], env, tmp_path).returncode == 0
    assert run(["silence", "list"], env, tmp_path).stdout == ""
    assert sil["id"] in run(["silence", "list", "--all"], env, tmp_path).stdout
    bad = run(["silence", "add", "--target", "*", "--code", "*", "--for", "soon", "--comment", "x"], env, tmp_path)
    assert bad.returncode == 64 and "for:" in bad.stderr
    again = run(["silence", "expire", sil["id"]], env, tmp_path)
    assert again.returncode == 64 and sil["id"] in again.stderr


def test_replay_notify_sends_and_plain_replay_does_not(tmp_path: Path) -> None:
    timeline = DATA / "vllm_admission_overload.jsonl.gz"
    with receiver() as rec:
        env = clean_env() | {"INFERGUARD_STATE_DIR": str(tmp_path / "state"),
                             "INFERGUARD_WEBHOOK_URL": f"{rec.url}/hook;bearer=tok-123"}
        plain = run(["replay", str(timeline), "--json"], env, tmp_path)
        assert plain.returncode == 0 and rec.attempts == 0
        p = run(["replay", str(timeline), "--notify", "--json"], env, tmp_path)
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["notify"]["delivered"] == 2 and out["waiting"] == []
        kinds = [r.json()["status"] for r in rec.on("/hook")]
        assert kinds == ["firing", "resolved"]
        assert rec.on("/hook")[0].headers["Authorization"] == "Bearer tok-123"
        assert "tok-123" not in p.stdout + p.stderr
        # Replaying again is no news: the state directory remembers what was sent.
        again = run(["replay", str(timeline), "--notify", "--json"], env, tmp_path)
        assert json.loads(again.stdout)["notify"]["delivered"] == 0 and len(rec.on("/hook")) == 2
    nothing = run(["replay", str(timeline), "--notify"], clean_env() | {"INFERGUARD_STATE_DIR": str(tmp_path)},
                  tmp_path)
    assert nothing.returncode == 64 and "needs a sink" in nothing.stderr


def test_replay_notify_under_dry_run_actuation_then_actions_list(tmp_path: Path) -> None:
    timeline = DATA / "vllm_kv_overload.jsonl.gz"
    with receiver() as rec:
        env = clean_env() | {"INFERGUARD_STATE_DIR": str(tmp_path / "state"), "INFERGUARD_ACTUATION_MODE": "dry_run",
                             "INFERGUARD_ACTUATION_ENDPOINT": f"{rec.url}/act",
                             "INFERGUARD_ACTUATION_ALLOWLIST": "throttle_concurrency"}
        p = run(["replay", str(timeline), "--notify", "--json"], env, tmp_path)
        assert p.returncode == 0, p.stderr
        assert rec.attempts == 0
        entries = [json.loads(line) for line in run(["actions", "list"], env, tmp_path).stdout.splitlines()]
        assert {(e["action"], e["outcome"]) for e in entries} >= {("throttle_concurrency", "dry_run"),
                                                                  ("scale_out", "denied")}
