"""rlm_agent's copies of the shared vocabulary match inferguard's originals and the schemas."""

from __future__ import annotations

from inferguard import models
from rlm_agent import load_schema, vocab


def test_anomaly_codes_and_engines_match() -> None:
    assert vocab.ANOMALY_CODES == models.ANOMALY_CODES
    assert vocab.ENGINES == models.ENGINES


def test_signals_are_canonical() -> None:
    assert set(vocab.SIGNALS) <= set(models.SIGNALS)


def test_schema_enums_follow_the_vocabulary() -> None:
    answer = load_schema("answer")["$defs"]
    assert answer["diagnosis"]["properties"]["root_cause"]["enum"] == list(vocab.ROOT_CAUSES)
    assert answer["advisory"]["properties"]["action"]["enum"] == list(vocab.ACTIONS)
    assert answer["diagnosis"]["properties"]["claim_status"]["enum"] == list(vocab.CLAIM_STATUSES)
    payload = load_schema("payload")
    assert payload["$defs"]["anomaly"]["properties"]["code"]["enum"] == list(models.ANOMALY_CODES)
    assert payload["properties"]["engine"]["enum"] == list(models.ENGINES)
    assert "schema_version" in payload["required"] and "schema_version" in load_schema("answer")["required"]


def test_inferguard_answer_vocabulary_is_the_published_one() -> None:
    # inferguard reads answers without the schema files; its vocabulary must be the brain's.
    from inferguard.brain import payloads

    answer = load_schema("answer")["$defs"]
    assert list(payloads.ROOT_CAUSES) == answer["diagnosis"]["properties"]["root_cause"]["enum"]
    assert list(payloads.ACTIONS) == answer["advisory"]["properties"]["action"]["enum"]
    assert list(payloads.CLAIM_STATUSES) == answer["diagnosis"]["properties"]["claim_status"]["enum"]
    assert list(payloads.SOURCES) == answer["diagnosis"]["properties"]["source"]["enum"]
    assert list(payloads.HORIZONS) == answer["advisory"]["properties"]["horizon"]["enum"]
    payload = load_schema("payload")
    assert payloads.SCHEMA_VERSION == vocab.SCHEMA_VERSION
    inc = payload["$defs"]["incident"]["properties"]
    assert list(payloads.SEVERITIES) == inc["severity"]["enum"]
    assert list(payloads.STATUSES) == inc["status"]["enum"]


def test_one_source_of_llm_settings_with_one_set_of_defaults() -> None:
    # The daemon reads BrainSettings; `rlm-agent` reads the same names from its environment.
    from inferguard.brain import llm_settings
    from inferguard.config import BrainSettings
    from rlm_agent import LLMSettings

    daemon = llm_settings(BrainSettings(_env_file=None))
    alone = LLMSettings.from_env({})
    fields = ("base_url", "model", "timeout_s", "max_calls_per_hour", "redact")
    assert [getattr(daemon, f) for f in fields] == [getattr(alone, f) for f in fields]
