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
