"""What a restart must not forget: learned baselines and active anomalies (DetectorBank.export_state /
import_state) and open incidents (incident_from_dict, IncidentBook.adopt)."""

from __future__ import annotations

import json

from inferguard.detectors import DetectorBank
from inferguard.incidents import IncidentBook, incident_from_dict
from tests.unit.test_detectors import HEALTHY, T, codes, feed, sig


def test_baselines_and_active_anomalies_survive_an_export_and_import() -> None:
    before = DetectorBank()
    feed(before, [dict(HEALTHY, ttft_p95_s=0.02)] * 6)
    hot = {"kv_usage": 0.97, "requests_waiting": 20, "preemptions_per_s": 3.0}
    seen = feed(before, [hot] * 3, start=100)
    assert "kv_pressure" in seen[-1]
    doc = json.loads(json.dumps(before.export_state()))  # what memory stores is plain JSON

    after = DetectorBank()
    assert after.import_state(doc) >= 2
    base = after._streams[(T, "tiny")].baselines["ttft_p95_s"]
    assert base.n == before._streams[(T, "tiny")].baselines["ttft_p95_s"].n and base.n >= 3
    # The anomaly is active on the very first sample after the restart: no persistence wait, no resolve.
    assert "kv_pressure" in codes(after.observe(sig(200, **hot)))
    # A fresh bank (no import) would need persistence again and has no baseline.
    fresh = DetectorBank()
    assert "kv_pressure" not in codes(fresh.observe(sig(200, **hot)))
    assert "ttft_p95_s" not in fresh._streams[(T, "tiny")].baselines


def test_import_skips_what_it_cannot_read() -> None:
    bank = DetectorBank()
    assert bank.import_state({"version": 99}) == 0
    doc = {"version": 1, "streams": [{"target": T, "model": "m", "baselines": {"x": {"value": "nan?"}}},
                                     {"target": T, "model": "m2", "baselines": {"ttft_p95_s": {"value": 0.1, "n": 9}}}]}
    assert bank.import_state(doc) == 1


def test_an_open_incident_is_adopted_as_the_same_incident() -> None:
    from tests.memory.docs import KV, finding

    book = IncidentBook()
    (opened,) = book.update(T, 100.0, [finding(T, 100.0, KV)], engine="vllm-v1", model="llama-3-8b")
    doc = json.loads(json.dumps(opened.incident.to_dict()))
    restarted = IncidentBook()
    inc = incident_from_dict(doc)
    assert inc.to_dict() == opened.incident.to_dict()
    assert restarted.adopt(inc) is True and restarted.adopt(inc) is False
    events = restarted.update(T, 130.0, [finding(T, 100.0, KV)], engine="vllm-v1", model="llama-3-8b")
    assert [e.kind for e in events] in ([], ["updated"])  # never a second "opened"
    assert restarted.open_incidents()[0].id == inc.id


def test_a_restored_incident_judges_its_next_diagnosis_as_before() -> None:
    from tests.memory.docs import KV, finding

    book = IncidentBook()
    (opened,) = book.update(T, 100.0, [finding(T, 100.0, KV)], engine="vllm-v1", model="llama-3-8b")
    live = opened.incident
    strong = {"root_cause": "kv_cache_exhaustion", "confidence": 0.9, "source": "rules"}
    assert live.apply_diagnosis(101.0, strong, [], "rules")
    live.record_action({"ts": 102.0, "outcome": "sent", "action": "throttle_concurrency", "key": "k1"})
    live.never_reachable = True
    restored = incident_from_dict(json.loads(json.dumps(live.to_dict())))
    assert restored.to_dict() == live.to_dict()
    assert restored.actions == live.actions and restored.never_reachable
    # A weaker, different cause with no new evidence is refused by both, restart or not.
    weak = {"root_cause": "prefill_bottleneck", "confidence": 0.5, "source": "rules"}
    assert not live.apply_diagnosis(103.0, weak, [], "rules")
    assert not restored.apply_diagnosis(103.0, weak, [], "rules")
    assert restored.diagnosis == strong
