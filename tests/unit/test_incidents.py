from __future__ import annotations

from inferguard.incidents import IncidentBook
from inferguard.models import Evidence, Finding

T = "http://10.0.0.1:8000/metrics"


def f(code: str, ts: float, severity: str = "warning") -> Finding:
    return Finding(code=code, target=T, model="m", severity=severity, ts=ts, summary=code,  # type: ignore[arg-type]
                   evidence=(Evidence("kv_usage", 0.9, 0.85, ">="),))


def test_lifecycle_open_update_resolve() -> None:
    book = IncidentBook(resolve_after=2)
    ev = book.update(T, 10, [f("kv_pressure", 10)], engine="vllm-v1", model="m")
    assert [e.kind for e in ev] == ["opened"]
    inc = ev[0].incident
    fp = inc.fingerprint
    ev = book.update(T, 13, [f("kv_pressure", 10), f("preemption_storm", 13, "critical")], engine="vllm-v1",
                     model="m")
    assert ev[0].kind == "updated" and "+preemption_storm" in ev[0].changes
    assert inc.severity == "critical"
    assert book.update(T, 16, [f("kv_pressure", 10), f("preemption_storm", 13, "critical")],
                       engine="vllm-v1", model="m") == []  # nothing changed: nothing said
    ev = book.update(T, 19, [], engine="vllm-v1", model="m")
    assert ev[0].kind == "updated" and set(ev[0].changes) >= {"-kv_pressure", "-preemption_storm"}
    ev = book.update(T, 22, [], engine="vllm-v1", model="m")
    assert ev[0].kind == "resolved"
    d = inc.to_dict()
    assert d["resolved_at"] == 22 and d["opened_at"] == 10 and d["fingerprint"] == fp
    assert d["peak_severity"] == "critical" and d["status"] == "resolved"
    assert {a["code"] for a in d["anomalies"]} == {"kv_pressure", "preemption_storm"}
    assert all(a["evidence"] for a in d["anomalies"])
    for key in ("id", "fingerprint", "target", "engine", "model", "severity", "anomalies", "opened_at",
                "updated_at", "resolved_at"):
        assert key in d


def test_flapping_reopens_the_same_incident() -> None:
    book = IncidentBook(resolve_after=1, reopen_within_s=60)
    first = book.update(T, 0, [f("queue_buildup", 0)], engine="vllm-v1", model="m")[0].incident
    book.update(T, 3, [], engine="vllm-v1", model="m")
    assert first.resolved_at == 3
    ev = book.update(T, 30, [f("queue_buildup", 30)], engine="vllm-v1", model="m")
    assert ev[0].kind == "updated" and ev[0].incident is first and first.flaps == 1
    assert first.resolved_at is None and len(book.history) == 1
    book.update(T, 33, [], engine="vllm-v1", model="m")
    ev = book.update(T, 500, [f("queue_buildup", 500)], engine="vllm-v1", model="m")
    assert ev[0].kind == "opened" and ev[0].incident is not first


def test_fingerprint_is_stable_and_distinct() -> None:
    from inferguard.incidents import fingerprint

    assert fingerprint(T, "m", ["b", "a"]) == fingerprint(T, "m", ["a", "b", "a"])
    assert fingerprint(T, "m", ["a"]) != fingerprint(T + "x", "m", ["a"])
