from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from inferguard.config import GROUPS, Settings
from inferguard.errors import ConfigError
from inferguard.runtime.build import check_thresholds, detector_config

ROOT = Path(__file__).resolve().parents[2]
# Every settings group Settings.load() reads, so a group added later is checked without editing this test.
SETTINGS_GROUPS = [info.annotation for info in Settings.model_fields.values()]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in list(os.environ):
        if k.startswith(("INFERGUARD_", "GMI_", "UPSTASH_")) or k in ("TARGET_ENDPOINT", "POLL_INTERVAL_SECONDS",
                                                          "KV_ALERT_THRESHOLD", "TTFT_ALERT_MULTIPLIER"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_operator_names_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_ENDPOINT", "http://a:8000/metrics, http://b:8000/metrics")
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "7")
    monkeypatch.setenv("KV_ALERT_THRESHOLD", "0.9")
    monkeypatch.setenv("TTFT_ALERT_MULTIPLIER", "3")
    s = Settings.load()
    assert [t.url for t in s.target_list()] == ["http://a:8000/metrics", "http://b:8000/metrics"]
    assert s.targets.poll_interval_seconds == 7
    cfg = detector_config(s)
    assert cfg.kv_threshold == 0.9 and cfg.ttft_multiplier == 3 and cfg.kv_clear < 0.9


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [("KV_ALERT_THRESHOLD", "1.5", "KV_ALERT_THRESHOLD"), ("POLL_INTERVAL_SECONDS", "-1", "POLL_INTERVAL_SECONDS"),
     ("INFERGUARD_SCRAPE_TIMEOUT_SECONDS", "zero", "INFERGUARD_SCRAPE_TIMEOUT_SECONDS"),
     ("INFERGUARD_LISTEN", "nowhere", "INFERGUARD_LISTEN"),
     ("INFERGUARD_BRAIN_MODE", "magic", "INFERGUARD_BRAIN_MODE")],
)
def test_bad_setting_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert info.value.setting == named


def test_targets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "targets.yaml"
    f.write_text("- url: http://a:8000/metrics\n  name: a\n  engine: vllm-v1\n  interval_seconds: 10\n"
                 "  labels: {cluster: eu}\n  thresholds: {kv_threshold: 0.9}\n  bearer_token_env: A_TOKEN\n")
    monkeypatch.setenv("INFERGUARD_TARGETS_FILE", str(f))
    monkeypatch.setenv("A_TOKEN", "tok")
    (t,) = Settings.load().target_list()
    got = (t.name, t.engine_hint, t.interval_s, t.labels, t.bearer_token)
    assert got == ("a", "vllm-v1", 10, {"cluster": "eu"}, "tok")
    f.write_text("- url: http://a:8000/metrics\n  thresholds: {kv_treshold: 0.9}\n")
    with pytest.raises(ConfigError, match="kv_treshold"):  # checked against the detectors when built
        check_thresholds(Settings.load().target_list())
    f.write_text("- url: http://a:8000/metrics\n  engine: vllm\n")
    with pytest.raises(ConfigError, match="unknown engine 'vllm'"):
        Settings.load().target_list()
    f.write_text("- url: ftp://nope\n")
    with pytest.raises(ConfigError, match=r"INFERGUARD_TARGETS_FILE\[0\]"):
        Settings.load().target_list()


def test_config_show_redacts_secrets(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERGUARD_", "GMI_"))}
    env["GMI_API_KEY"] = "sk-very-secret-value"
    out = subprocess.run([sys.executable, "-m", "inferguard", "config", "show"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert "sk-very-secret-value" not in out
    assert json.loads(out)["brain"]["gmi_api_key"] == "**********"


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", text, re.M))
    expected = set()
    for group in GROUPS.values():
        prefix = group.model_config.get("env_prefix", "")
        for name, info in group.model_fields.items():
            alias = info.validation_alias
            expected.add(alias.choices[0] if alias is not None else f"{prefix}{name.upper()}")  # type: ignore[union-attr]
    assert expected - documented == set()


def _env_defaults() -> dict[str, tuple[object, str]]:
    """Every setting's environment name → (its default, its description), from the settings classes."""
    out = {}
    for group in SETTINGS_GROUPS:
        prefix = group.model_config.get("env_prefix", "")
        for name, info in group.model_fields.items():
            alias = info.validation_alias
            env = alias.choices[0] if alias is not None else f"{prefix}{name.upper()}"  # type: ignore[union-attr]
            out[env] = (info.get_default(call_default_factory=True), info.description or "")
    return out


def _same(written: str, default: object) -> bool:
    if default is None:
        return written == ""
    if isinstance(default, bool):
        return written.lower() == str(default).lower()
    if isinstance(default, int | float):
        try:
            return float(written) == float(default)
        except ValueError:
            return False
    return written == str(default)


def test_env_example_shows_each_default_with_a_line_of_meaning() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    defaults = _env_defaults()
    wrong, unexplained = [], []
    for i, line in enumerate(lines):
        m = re.match(r"^# ([A-Z][A-Z0-9_]+)=(.*)$", line)
        if not m or m[1] not in defaults:
            continue
        if not _same(m[2], defaults[m[1]][0]):
            wrong.append(f"{m[1]}: .env.example says {m[2]!r}, the default is {defaults[m[1]][0]!r}")
        # The meaning: the comment block right above (shared by a run of related settings).
        j = i - 1
        while j >= 0 and re.match(r"^# [A-Z][A-Z0-9_]+=", lines[j]):
            j -= 1
        if j < 0 or not lines[j].startswith("# ") or lines[j].startswith("# ---") or len(lines[j]) < 12:
            unexplained.append(m[1])
    assert wrong == [] and unexplained == []


def test_watch_refuses_remote_brain_without_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERGUARD_", "GMI_"))}
    env["INFERGUARD_BRAIN_MODE"] = "remote"
    p = subprocess.run([sys.executable, "-m", "inferguard", "watch", "http://127.0.0.1:9/metrics", "--duration", "1"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 64 and "INFERGUARD_BRAIN_URL" in p.stderr


@pytest.mark.parametrize("env, value, named", [
    ("INFERGUARD_SCRAPE_TIMEOUT_SECONDS", "inf", "INFERGUARD_SCRAPE_TIMEOUT_SECONDS"),
    ("POLL_INTERVAL_SECONDS", "nan", "POLL_INTERVAL_SECONDS"),
    ("INFERGUARD_LLM_TIMEOUT_SECONDS", "Infinity", "INFERGUARD_LLM_TIMEOUT_SECONDS"),
])
def test_non_finite_timeouts_and_intervals_are_refused(monkeypatch: pytest.MonkeyPatch, env: str, value: str,
                                                       named: str) -> None:
    # An infinite timeout would let one engine hold a scrape slot forever; NaN compares false everywhere.
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert info.value.setting == named


def test_non_finite_target_and_command_line_numbers_are_refused(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from inferguard.runtime.build import check_options
    from inferguard.runtime.daemon import DaemonOptions

    f = tmp_path / "targets.yaml"
    f.write_text("- url: http://a:8000/metrics\n  timeout_seconds: .inf\n")
    monkeypatch.setenv("INFERGUARD_TARGETS_FILE", str(f))
    with pytest.raises(ConfigError, match=r"INFERGUARD_TARGETS_FILE\[0\]"):
        Settings.load().target_list()
    for bad in ({"interval_s": float("inf")}, {"interval_s": 1.0, "duration_s": float("nan")},
                {"interval_s": 0.0}):
        with pytest.raises(ConfigError, match="finite"):
            check_options(DaemonOptions(**bad))  # type: ignore[arg-type]
    check_options(DaemonOptions(interval_s=1.0, duration_s=5.0))
