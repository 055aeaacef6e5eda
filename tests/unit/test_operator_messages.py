"""Messages an operator meets in the first hour: what a failed scrape was, which threshold names exist,
which v6 settings do nothing here, and base URLs that mean /metrics."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from inferguard.config import Settings, with_metrics_path
from inferguard.detectors import DetectorConfig
from inferguard.detectors.config import threshold_names
from inferguard.errors import ConfigError
from inferguard.models import describe_scrape_failure
from inferguard.runtime.build import check_thresholds
from inferguard.startup import V6_WITHOUT_EFFECT, declared_env_names, ineffective_settings, startup_fields

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in list(os.environ):
        if k.startswith(("INFERGUARD_", "GMI_", "UPSTASH_")) or k in ("TARGET_ENDPOINT", "POLL_INTERVAL_SECONDS"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("given", "scraped"), [
    ("http://h:8000", "http://h:8000/metrics"), ("http://h:8000/", "http://h:8000/metrics"),
    ("https://h", "https://h/metrics"), ("http://h:8000/metrics", "http://h:8000/metrics"),
    ("http://h:9400/custom/path", "http://h:9400/custom/path")])
def test_a_base_url_means_its_metrics_path(given: str, scraped: str) -> None:
    assert with_metrics_path(given) == scraped


def test_v6_base_url_settings_keep_working(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TARGET_ENDPOINT", "http://vllm-a:8000,http://vllm-b:8000/")
    assert [t.url for t in Settings.load().target_list()] == ["http://vllm-a:8000/metrics",
                                                               "http://vllm-b:8000/metrics"]
    f = tmp_path / "targets.yaml"
    f.write_text("- url: http://vllm-c:8000\n")
    monkeypatch.setenv("INFERGUARD_TARGETS_FILE", str(f))
    monkeypatch.delenv("TARGET_ENDPOINT")
    assert [t.url for t in Settings.load().target_list()] == ["http://vllm-c:8000/metrics"]
    assert [t.url for t in Settings.load().target_list(["http://x:1"])] == ["http://x:1/metrics"]


@pytest.mark.parametrize(("reason", "status", "detail", "says"), [
    ("http_status", 404, "", "HTTP 404 at /metrics"),
    ("http_status", 401, "", "authentication required"),
    ("not_metrics", 200, "an HTML page", "an HTML page at /metrics, not metrics"),
    ("not_metrics", 200, "a JSON document", "a JSON document at /metrics, not metrics"),
    ("refused", None, "", "connection refused at h:8000"),
    ("timeout", None, "", "before the scrape timeout")])
def test_a_failed_scrape_is_described(reason: str, status: int | None, detail: str, says: str) -> None:
    assert says in describe_scrape_failure(reason, status, "http://user:secret@h:8000/metrics", detail)
    assert "secret" not in describe_scrape_failure(reason, status, "http://user:secret@h:8000/metrics", detail)


def test_an_unknown_threshold_lists_the_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        DetectorConfig().with_overrides({"kv_treshold": 0.9})
    msg = str(info.value)
    assert "kv_treshold (did you mean kv_threshold?)" in msg
    assert all(name in msg for name in threshold_names())


def test_docs_list_every_threshold_name() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert [n for n in threshold_names() if f"`{n}`" not in doc] == []
    listed = re.findall(r"^\| `(\w+)` \| [\d.]+ \|", doc, re.M)
    assert sorted(listed) == sorted(threshold_names())  # and none that no longer exists


def test_targets_file_error_lists_the_valid_threshold_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("- url: http://a:8000/metrics\n  thresholds: {queue_treshold: 3}\n")
    monkeypatch.setenv("INFERGUARD_TARGETS_FILE", str(f))
    with pytest.raises(ConfigError, match=r"did you mean queue_threshold\?.*valid names: kv_threshold"):
        check_thresholds(Settings.load().target_list())  # what `watch` runs before it starts


def test_v6_settings_without_effect_are_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BL_API_KEY=x\nINFERGUARD_REPLAY_SPEED=2\n")
    env = {"UPSTASH_REDIS_REST_URL": "https://u", "DAYTONA_API_KEY": "d", "INFERGUARD_ACTUATION_MODE": "live",
           "TARGET_ENDPOINT": "http://a"}
    found = dict(ineffective_settings(env, tmp_path / ".env"))
    declared = declared_env_names()
    expected = {n for n in ("UPSTASH_REDIS_REST_URL", "DAYTONA_API_KEY", "INFERGUARD_ACTUATION_MODE", "BL_API_KEY",
                            "INFERGUARD_REPLAY_SPEED") if n not in declared}
    assert set(found) == expected
    assert all(why for why in found.values())
    assert "TARGET_ENDPOINT" in declared and "INFERGUARD_LISTEN" in declared


def test_a_declared_setting_is_never_warned_about() -> None:
    # Implementing a v6 setting means declaring it in a settings group; the warning then stops by itself.
    declared = sorted(declared_env_names())
    assert ineffective_settings({name: "1" for name in declared}, None) == []
    assert {p for p, _ in V6_WITHOUT_EFFECT} >= {"DAYTONA_API_KEY", "BL_API_KEY"}


def test_startup_fields_say_what_the_daemon_does(tmp_path: Path) -> None:
    settings = Settings.load(env_file=None)
    fields = startup_fields(settings, targets=[], interval_s=30.0, listen="127.0.0.1:9464", env_file=None)
    assert fields["llm"].startswith("off") and fields["interval_s"] == 30.0 and fields["listen"] == "127.0.0.1:9464"
    assert fields["brain_mode"] == "local" and "no .env" in fields["settings_from"]
    (tmp_path / ".env").write_text("GMI_API_KEY=sk-secret\n")
    settings = Settings.load(env_file=tmp_path / ".env")
    fields = startup_fields(settings, targets=[], interval_s=5, listen=None, env_file=tmp_path / ".env")
    assert fields["llm"].startswith("on (") and str(tmp_path / ".env") in fields["settings_from"]
    assert "sk-secret" not in repr(fields) and fields["listen"] == "off"
    from inferguard.models import Target
    fields = startup_fields(settings, targets=[Target("http://u:pw@h:8000/metrics"), Target("http://x/metrics", "x")],
                            interval_s=5, listen=None, env_file=None)
    assert fields["first_targets"] == ["http://h:8000/metrics", "x"] and fields["targets"] == 2
