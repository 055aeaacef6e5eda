"""inferguard.brain.payloads: typed payloads built from the incident stage's documents, and answers read back.

The builder does not run the JSON Schema at run time; these tests check its output against the schema
the brain publishes (rlm_agent.validate_payload), which is where that check belongs."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from inferguard.brain.payloads import (
    SCHEMA_VERSION,
    build_incident_payload,
    build_proactive_payload,
    parse_answer,
)
from inferguard.errors import PayloadError
from rlm_agent import validate_payload

ROOT = Path(__file__).resolve().parents[2]


def incident(**over: Any) -> dict[str, Any]:
    inc = {
        "id": "inc-5f3a", "fingerprint": "0123456789abcdef", "target": "http://gpu-7.us-east.corp:8000/metrics",
        "engine": "vllm-v1", "model": "acme/secret-7b", "severity": "critical", "status": "open",
        "synthetic": False, "labels": {"cluster": "prod-east", "node_ip": "10.20.30.40"},
        "anomalies": [{"code": "kv_pressure", "severity": "critical", "active": True,
                       "summary": "KV usage 0.99 on gpu-7.us-east.corp", "since": 1000.0, "cleared_at": None,
                       "evidence": [{"signal": "kv_usage", "value": 0.99, "threshold": 0.85, "op": ">=",
                                     "note": "max over ranks at 10.20.30.40"}]},
                      {"code": "preemption_storm", "severity": "warning", "active": True, "summary": "",
                       "since": 1003.0, "cleared_at": None,
                       "evidence": [{"signal": "preemptions_per_s", "value": 14.0, "threshold": 0.5, "op": ">=",
                                     "note": ""}]}],
        "opened_at": 1000.0, "updated_at": 1030.0, "resolved_at": None,
    }
    inc.update(over)
    return inc


WINDOW: list[dict[str, Any]] = [
    {"ts": 1000.0 + 3 * i, "values": {"kv_usage": 0.6 + 0.02 * i, "requests_waiting": 30.0 + i,
                                      "preemptions_per_s": 14.0, "requests_running": 3.0}}
    for i in range(10)]


def test_incident_payload_is_versioned_and_valid() -> None:
    p = build_incident_payload(incident(), WINDOW, [])
    assert p["schema_version"] == SCHEMA_VERSION == "1.0"
    assert p["kind"] == "incident" and p["engine"] == "vllm-v1" and p["incident"]["id"] == "inc-5f3a"
    assert p["window"] == WINDOW
    json.dumps(p, allow_nan=False)  # strict JSON on the wire
    validate_payload(dict(p))  # valid by the brain's published schema


def test_window_keeps_only_known_values_and_unknown_stays_absent() -> None:
    window = copy.deepcopy(WINDOW[:2])
    window[0]["values"]["kv_usage"] = float("nan")
    window[1]["values"]["vllm:raw_metric"] = 5.0
    p = build_incident_payload(incident(), list(reversed(window)), [])
    assert [s["ts"] for s in p["window"]] == [1000.0, 1003.0]  # oldest first
    assert "kv_usage" not in p["window"][0]["values"]  # NaN is unknown: absent, never 0
    assert "vllm:raw_metric" not in p["window"][1]["values"]


def test_similar_accepts_incident_summaries_and_full_incidents() -> None:
    past = incident(id="inc-old", status="resolved", resolved_at=900.0, opened_at=800.0)
    past["diagnosis"] = {"root_cause": "kv_cache_exhaustion"}
    summary = {"id": "inc-sum", "fingerprint": "ab", "target": "t", "engine": "vllm-v1",
               "codes": ["queue_buildup"], "opened_at": 700.0, "resolved_at": None, "root_cause": None}
    p = build_incident_payload(incident(), WINDOW, [past, summary])
    assert p["similar"][0]["codes"] == ["kv_pressure", "preemption_storm"]
    assert p["similar"][0]["root_cause"] == "kv_cache_exhaustion"
    assert p["similar"][1]["codes"] == ["queue_buildup"]
    validate_payload(dict(p))


@pytest.mark.parametrize("mutate, message", [
    (lambda inc: inc.pop("fingerprint"), "missing fingerprint"),
    (lambda inc: inc.update(engine="tgi"), "/engine"),
    (lambda inc: inc.update(severity="meh"), "/incident/severity"),
    (lambda inc: inc["anomalies"][0].update(code="bogus"), "/incident/anomalies/0/code"),
    (lambda inc: inc["anomalies"][0]["evidence"][0].update(value="high"), "expected a number"),
    (lambda inc: inc.update(anomalies=["kv"]), "anomalies[0]"),
])
def test_bad_incident_is_a_payload_error_naming_the_field(mutate: Any, message: str) -> None:
    inc = incident()
    mutate(inc)
    with pytest.raises(PayloadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_incident_payload(inc, WINDOW, [])


@pytest.mark.parametrize("window, message", [
    ("not a list", "window"),
    ([{"values": {}}], r"window\[0\]"),
    ([{"ts": float("inf"), "values": {}}], r"window\[0\].ts"),
    ([{"ts": 1.0, "values": {"kv_usage": "0.5"}}], "expected a number"),
])
def test_bad_window_is_a_payload_error(window: Any, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        build_incident_payload(incident(), window, [])


def test_proactive_payload() -> None:
    p = build_proactive_payload("http://e:8000/metrics", "sglang", "m", WINDOW, [], synthetic=True)
    assert p["kind"] == "proactive" and p["synthetic"] is True and "incident" not in p
    validate_payload(dict(p))
    with pytest.raises(PayloadError, match="/engine"):
        build_proactive_payload("http://e:8000/metrics", "triton", "m", WINDOW, [])


def _answer() -> dict[str, Any]:
    return {"schema_version": "1.0",
            "diagnosis": {"root_cause": "kv_cache_exhaustion", "summary": "s", "confidence": 0.9,
                          "evidence": [{"signal": "kv_usage", "value": 0.99, "note": ""}],
                          "claim_status": "measured", "source": "rules", "fallback_reason": None},
            "advisories": [{"action": "throttle_concurrency", "advisory_only": True, "confidence": 0.8,
                            "horizon": "now", "rationale": "r", "parameters": {"max_concurrency": 3},
                            "engine_steps": ["--max-num-seqs 3"],
                            "evidence": [{"signal": "kv_usage", "value": 0.99, "note": ""}]}]}


def test_parse_answer_accepts_a_valid_answer() -> None:
    assert parse_answer(_answer()) == _answer()


@pytest.mark.parametrize("mutate, where", [
    (lambda a: a.pop("schema_version"), "schema_version"),
    (lambda a: a.update(schema_version="2.0"), "unsupported schema_version"),
    (lambda a: a["diagnosis"].update(root_cause="vibes"), "/diagnosis/root_cause"),
    (lambda a: a["diagnosis"].update(confidence=1.5), "/diagnosis/confidence"),
    (lambda a: a["diagnosis"].update(source="oracle"), "/diagnosis/source"),
    (lambda a: a["advisories"][0].update(advisory_only=False), "/advisories/0/advisory_only"),
    (lambda a: a["advisories"][0].update(evidence=[]), "/advisories/0/evidence"),
    (lambda a: a["advisories"][0].update(action="reboot_everything"), "/advisories/0/action"),
])
def test_parse_answer_rejects_malformed_answers(mutate: Any, where: str) -> None:
    a = _answer()
    mutate(a)
    with pytest.raises(PayloadError, match=where):
        parse_answer(a)


@pytest.mark.parametrize("junk", [None, "answer", [], 1])
def test_parse_answer_rejects_junk(junk: Any) -> None:
    with pytest.raises(PayloadError, match="expected a JSON object"):
        parse_answer(junk)


def test_payloads_module_does_not_import_rlm_agent() -> None:
    tree = ast.parse((ROOT / "inferguard" / "brain" / "payloads.py").read_text("utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m.split(".")[0] == "rlm_agent" for m in imported)
