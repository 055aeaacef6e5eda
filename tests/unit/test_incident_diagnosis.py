"""The diagnosis an incident keeps: best-supported over its life; every answer in its history."""

from __future__ import annotations

from typing import Any

from inferguard.incidents import IncidentBook
from inferguard.models import Finding

T = "http://10.0.0.1:8000/metrics"


def d(cause: str, conf: float) -> dict[str, Any]:
    return {"root_cause": cause, "confidence": conf, "summary": cause}


def incident():  # type: ignore[no-untyped-def]
    book = IncidentBook(resolve_after=1)
    found = [Finding(code="queue_buildup", target=T, model="m", severity="warning", ts=0, summary="q")]
    return book, book.update(T, 0, found, engine="vllm-v1", model="m")[0].incident


def test_a_fading_tail_does_not_replace_the_cause() -> None:
    _, inc = incident()
    assert inc.apply_diagnosis(0, d("admission_overload", 0.9), [{"action": "raise_batch_capacity"}], "rules")
    # The queue drained, TTFT still high: a weaker, different cause.
    assert not inc.apply_diagnosis(30, d("prefill_bottleneck", 0.5), [{"action": "x"}], "rules")
    assert inc.diagnosis is not None and inc.diagnosis["root_cause"] == "admission_overload"
    assert inc.advisories == [{"action": "raise_batch_capacity"}]
    assert [(x["root_cause"], x["adopted"]) for x in inc.to_dict()["diagnoses"]] == [
        ("admission_overload", True), ("prefill_bottleneck", False)]


def test_better_supported_new_evidence_changes_the_cause() -> None:
    _, inc = incident()
    inc.apply_diagnosis(0, d("admission_overload", 0.65), [], "rules")
    assert inc.apply_diagnosis(9, d("kv_cache_exhaustion", 0.85), [], "llm")
    assert inc.diagnosis is not None and inc.diagnosis["root_cause"] == "kv_cache_exhaustion"
    assert [(x["ts"], x["source"]) for x in inc.diagnoses] == [(0, "rules"), (9, "llm")]


def test_a_thin_start_is_replaced_and_never_restored() -> None:
    _, inc = incident()
    inc.apply_diagnosis(0, d("insufficient_evidence", 0.5), [], "rules")
    assert inc.apply_diagnosis(3, d("kv_cache_exhaustion", 0.4), [], "rules")
    assert not inc.apply_diagnosis(6, d("insufficient_evidence", 0.5), [], "rules")
    assert inc.diagnosis is not None and inc.diagnosis["root_cause"] == "kv_cache_exhaustion"


def test_same_cause_keeps_its_peak_reading() -> None:
    _, inc = incident()
    inc.apply_diagnosis(0, d("kv_cache_exhaustion", 0.6), [], "rules")
    assert inc.apply_diagnosis(3, d("kv_cache_exhaustion", 0.9), [], "rules")
    assert not inc.apply_diagnosis(6, d("kv_cache_exhaustion", 0.7), [], "rules")
    assert inc.diagnosis is not None and inc.diagnosis["confidence"] == 0.9


def test_nothing_rewrites_a_resolved_incident() -> None:
    book, inc = incident()
    inc.apply_diagnosis(0, d("admission_overload", 0.7), [], "rules")
    book.update(T, 3, [], engine="vllm-v1", model="m")
    assert inc.resolved_at == 3
    assert not inc.apply_diagnosis(4, d("prefill_bottleneck", 0.9), [], "llm")
    assert inc.diagnosis is not None and inc.diagnosis["root_cause"] == "admission_overload"


def test_a_new_anomaly_is_new_evidence_even_at_lower_confidence() -> None:
    book, inc = incident()
    inc.apply_diagnosis(0, d("engine_down", 0.95), [], "rules")
    found = [Finding(code="queue_buildup", target=T, model="m", severity="warning", ts=0, summary="q"),
             Finding(code="engine_restart", target=T, model="m", severity="warning", ts=3, summary="r")]
    book.update(T, 3, found, engine="vllm-v1", model="m")
    assert inc.apply_diagnosis(3, d("engine_restarted", 0.85), [], "rules")
    assert inc.diagnosis is not None and inc.diagnosis["root_cause"] == "engine_restarted"
    # ...but only once: the same codes later are no longer news.
    assert not inc.apply_diagnosis(6, d("prefill_bottleneck", 0.5), [], "rules")


def test_an_llm_explaining_the_same_cause_refines_it() -> None:
    _, inc = incident()
    inc.apply_diagnosis(0, {**d("kv_cache_exhaustion", 0.95), "source": "rules"}, [], "rules")
    assert inc.apply_diagnosis(2, {**d("kv_cache_exhaustion", 0.8), "source": "llm"}, [], "llm")
    assert inc.diagnosis is not None and inc.diagnosis["source"] == "llm"
    # ...and a later, weaker rules reading of the same cause does not undo it.
    assert not inc.apply_diagnosis(4, {**d("kv_cache_exhaustion", 0.7), "source": "rules"}, [], "rules")
