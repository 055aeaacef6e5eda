"""What a hostile page can make the pipeline hold, and what it is told when it is cut short.

Duplicate series keep the first value; non-cumulative buckets give no quantile; over-long labels,
series past the per-page limit and models past the per-target limit are dropped. Every drop is
counted and raises ``metrics_dropped``; a model that leaves the page takes its anomalies (and its
detector state) with it, so its incident resolves.
"""

from __future__ import annotations

import os

import pytest

from inferguard.config import Settings
from inferguard.detectors import DetectorConfig
from inferguard.errors import ConfigError
from inferguard.models import Scrape
from inferguard.normalise.target import MAX_MODELS
from inferguard.pipeline import Pipeline
from inferguard.runtime.build import build_pipeline
from inferguard.sources.exposition import MAX_LABEL_LENGTH, ExpositionParser
from tests.hostile import duplicate_series_page, non_monotone_page, vllm_page

T = "http://127.0.0.1:9/metrics"


def _pipeline() -> Pipeline:
    return Pipeline(config=DetectorConfig(fire_after=1, clear_after=1))


def _observe(p: Pipeline, ts: float, body: str | bytes) -> tuple[set[str], dict[str, float]]:
    text = body.decode() if isinstance(body, bytes) else body
    obs = p.observe(Scrape(target=T, ts=ts, status=200, body=text))
    assert obs.error is None
    dropped = {e.signal: e.value for f in obs.findings if f.code == "metrics_dropped" for e in f.evidence}
    return {f.code for f in obs.findings}, {k: v for k, v in dropped.items() if v is not None}


def test_a_duplicate_series_keeps_the_first_value_and_is_reported() -> None:
    p = _pipeline()
    codes, dropped = _observe(p, 0, duplicate_series_page())
    assert p.latest()[T]["hostile/dup"].get("kv_usage") == 0.2  # not the duplicate 0.99
    assert "kv_pressure" not in codes
    assert dropped == {"duplicate_series": 1.0}


def test_duplicates_ignore_label_order_and_keep_page_order() -> None:
    exp = ExpositionParser().parse('a{x="1",y="2"} 1\na{y="2",x="1"} 2\na{x="1"} 3\na 4\na 5\n')
    assert [v for _, v in exp.samples["a"]] == [1.0, 3.0, 4.0]
    assert exp.dropped == {"duplicate_series": 2} and exp.sample_lines == 5


def test_non_cumulative_buckets_give_no_quantile_and_are_reported() -> None:
    p = _pipeline()
    _observe(p, 0, non_monotone_page())
    page = non_monotone_page().decode().replace("} 80\n", "} 90\n").replace("} 70\n", "} 75\n")
    _, dropped = _observe(p, 5, page)
    values = p.latest()[T]["hostile/buckets"].values
    assert not any(k.startswith("ttft_") for k in values)
    assert dropped == {"invalid_histograms": 1.0}


def test_over_long_labels_are_dropped_and_counted() -> None:
    huge = "x" * (MAX_LABEL_LENGTH + 1)
    p = _pipeline()
    _, dropped = _observe(p, 0, vllm_page(["m"]) + f'vllm:num_requests_waiting{{model_name="{huge}"}} 1\n')
    assert set(p.latest()[T]) == {"m"}
    assert dropped == {"long_labels": 1.0}
    ok = "y" * MAX_LABEL_LENGTH  # at the limit: kept
    _observe(p, 5, vllm_page(["m", ok]))
    assert set(p.latest()[T]) == {"m", ok}


def test_series_past_the_page_limit_are_dropped_and_counted() -> None:
    exp = ExpositionParser(max_series=3).parse("a 1\nb 2\nc 3\nd 4\ne 5\n")
    assert list(exp.samples) == ["a", "b", "c"] and exp.dropped == {"series_over_limit": 2}


def test_models_past_the_limit_keep_the_known_ones_and_are_counted() -> None:
    p = _pipeline()
    first = [f"m{i:03d}" for i in range(MAX_MODELS)]
    _observe(p, 0, vllm_page(first))
    _, dropped = _observe(p, 5, vllm_page(["a-newcomer", *first]))
    assert set(p.latest()[T]) == set(first)  # the tracked models keep their place
    assert dropped == {"models_over_limit": 1.0}


def test_ever_new_model_names_hold_no_more_than_the_limit() -> None:
    p = _pipeline()
    for k in range(5):
        codes, dropped = _observe(p, 5.0 * k, vllm_page([f"gen{k}-{i}" for i in range(MAX_MODELS * 3)]))
        assert len(p.latest()[T]) == MAX_MODELS and dropped == {"models_over_limit": 2.0 * MAX_MODELS}
        assert "metrics_dropped" in codes
    streams = [key for key in p.bank._streams if key[0] == T]
    assert len(streams) <= MAX_MODELS + 1  # the models on the last page, and the target's own


def test_a_model_that_leaves_the_page_resolves_its_incident() -> None:
    p = _pipeline()
    hot = vllm_page(["a"], kv=0.99) + vllm_page(["b"], kv=0.1).split("\n", 3)[3]
    events = []
    for ts in range(0, 15, 5):
        events += p.observe(Scrape(target=T, ts=ts, status=200, body=hot)).events
    assert [e.kind for e in events][:1] == ["opened"] and p.book.open_incidents()
    assert p.book.open_incidents()[0].active_codes() == ["kv_pressure"]
    for ts in range(15, 45, 5):  # model "a" is gone; "b" stays healthy
        events += p.observe(Scrape(target=T, ts=ts, status=200, body=vllm_page(["b"], kv=0.1))).events
    assert not p.book.open_incidents()
    assert events[-1].kind == "resolved"
    assert set(p.latest()[T]) == {"b"} and p.bank.window(T, "a") == []


def test_a_failed_scrape_forgets_no_model() -> None:
    p = _pipeline()
    _observe(p, 0, vllm_page(["a"]))
    p.observe(Scrape(target=T, ts=5, error="timeout"))
    assert set(p.latest()[T]) == {"a"} and len(p.bank.window(T, "a")) == 1


def test_metrics_dropped_clears_when_the_page_is_clean_again() -> None:
    p = _pipeline()
    assert "metrics_dropped" in _observe(p, 0, duplicate_series_page())[0]
    assert "metrics_dropped" not in _observe(p, 5, vllm_page(["hostile/dup"]))[0]


# -- the limits are settings, passed through the composition root ---------------------------------------
def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for key in [k for k in os.environ if k.startswith("INFERGUARD_SCRAPE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings.load(env_file=None)


def test_a_lower_model_limit_setting_drops_and_counts_models(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, INFERGUARD_SCRAPE_MAX_MODELS="2")
    p = build_pipeline(settings, config=DetectorConfig(fire_after=1, clear_after=1))
    codes, dropped = _observe(p, 0, vllm_page(["a", "b", "c", "d"]))
    assert set(p.latest()[T]) == {"a", "b"} and dropped == {"models_over_limit": 2.0}
    assert "metrics_dropped" in codes
    default = build_pipeline(_settings(monkeypatch), config=DetectorConfig(fire_after=1, clear_after=1))
    assert _observe(default, 0, vllm_page(["a", "b", "c", "d"]))[1] == {}


def test_series_and_label_length_settings_reach_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, INFERGUARD_SCRAPE_MAX_LABEL_LENGTH="20", INFERGUARD_SCRAPE_MAX_SERIES="100")
    p = build_pipeline(settings, config=DetectorConfig(fire_after=1, clear_after=1))
    _, dropped = _observe(p, 0, vllm_page(["short", "a-model-name-of-30-characters-"]))
    assert set(p.latest()[T]) == {"short"} and dropped == {"long_labels": 3.0}
    many = "".join(f'vllm:num_requests_waiting{{model_name="m",rank="{i}"}} 1\n' for i in range(150))
    assert _observe(p, 5, vllm_page(["m"]) + many)[1] == {"series_over_limit": 53.0}


@pytest.mark.parametrize("env, value", [
    ("INFERGUARD_SCRAPE_MAX_MODELS", "0"), ("INFERGUARD_SCRAPE_MAX_MODELS", "nan"),
    ("INFERGUARD_SCRAPE_MAX_SERIES", "inf"), ("INFERGUARD_SCRAPE_MAX_SERIES", "0"),
    ("INFERGUARD_SCRAPE_MAX_LABEL_LENGTH", "-1"), ("INFERGUARD_SCRAPE_MAX_LABEL_LENGTH", "2.5"),
    ("INFERGUARD_SCRAPE_MAX_LABEL_LENGTH", "99999999"),
])
def test_a_bad_limit_setting_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, env: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        _settings(monkeypatch, **{env: value})
    assert info.value.setting == env and "\n" not in str(info.value)
