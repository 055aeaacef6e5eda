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
    assert ev[0].kind == "reopened" and ev[0].incident is first and first.flaps == 1
    from inferguard.memory.docs import check_event

    assert check_event(ev[0].to_dict())[0] == "incident.reopened"  # the incident memory takes it
    assert first.resolved_at is None and len(book.history) == 1
    book.update(T, 33, [], engine="vllm-v1", model="m")
    ev = book.update(T, 500, [f("queue_buildup", 500)], engine="vllm-v1", model="m")
    assert ev[0].kind == "opened" and ev[0].incident is not first


def test_fingerprint_is_stable_and_distinct() -> None:
    from inferguard.incidents import fingerprint

    assert fingerprint(T, "m", ["b", "a"]) == fingerprint(T, "m", ["a", "b", "a"])
    assert fingerprint(T, "m", ["a"]) != fingerprint(T + "x", "m", ["a"])


def kinds(inc_dict: dict) -> list[str]:  # type: ignore[type-arg]
    return [e["kind"] for e in inc_dict["events"]]


def test_a_different_trouble_after_a_resolve_is_a_new_incident() -> None:
    book = IncidentBook(resolve_after=1, reopen_within_s=180)
    first = book.update(T, 0, [f("kv_pressure", 0)], engine="vllm-v1", model="m")[0].incident
    book.update(T, 3, [], engine="vllm-v1", model="m")
    ev = book.update(T, 30, [f("queue_buildup", 30), f("ttft_regression", 30)], engine="vllm-v1", model="m")
    assert ev[0].kind == "opened" and ev[0].incident is not first and first.flaps == 0
    assert ev[0].incident.opened_at == 30


def test_shared_code_within_the_window_reopens_with_its_story() -> None:
    book = IncidentBook(resolve_after=1, reopen_within_s=180)
    first = book.update(T, 0, [f("queue_buildup", 0)], engine="vllm-v1", model="m")[0].incident
    book.update(T, 3, [], engine="vllm-v1", model="m")
    book.update(T, 30, [f("queue_buildup", 30), f("ttft_regression", 30)], engine="vllm-v1", model="m")
    d = first.to_dict()
    assert kinds(d) == ["opened", "resolved", "reopened"]
    assert [e["ts"] for e in d["events"]] == [0, 3, 30]
    assert d["events"][2]["changes"][0] == "reopened (flap 1)" and "+ttft_regression" in d["events"][2]["changes"]


def test_start_up_unreachable_is_its_own_incident_and_never_reopens() -> None:
    book = IncidentBook(resolve_after=1, reopen_within_s=180)
    down = [Finding(code="endpoint_unreachable", target=T, model="", severity="critical", ts=3, summary="down")]
    book.update(T, 0, [], engine="unknown", model="", reachable=False)
    start = book.update(T, 3, down, engine="unknown", model="", reachable=False)[0].incident
    assert start.never_reachable and start.model == ""
    book.update(T, 6, [], engine="vllm-v1", model="m", reachable=True)
    assert start.resolved_at == 6
    # Even the same code within the window: the start-up wait is not what a later crash is.
    again = [Finding(code="endpoint_unreachable", target=T, model="", severity="critical", ts=20, summary="down")]
    ev = book.update(T, 20, again, engine="vllm-v1", model="m", reachable=False)
    assert ev[0].kind == "opened" and ev[0].incident is not start
    assert not ev[0].incident.never_reachable  # it answered before: this one is a crash


def test_a_model_is_filled_in_when_the_findings_name_it() -> None:
    book = IncidentBook(resolve_after=2)
    restart = Finding(code="engine_restart", target=T, model="", severity="warning", ts=0, summary="r")
    inc = book.update(T, 0, [restart], engine="vllm-v1", model="", reachable=True)[0].incident
    assert inc.model == ""
    book.update(T, 3, [restart, f("queue_buildup", 3)], engine="vllm-v1", model="m", reachable=True)
    assert inc.model == "m"


def test_incident_severity_only_escalates_and_events_carry_it() -> None:
    book = IncidentBook(resolve_after=1)
    inc = book.update(T, 0, [f("queue_buildup", 0)], engine="vllm-v1", model="m")[0].incident
    ev = book.update(T, 3, [f("queue_buildup", 0, "critical")], engine="vllm-v1", model="m")
    assert "severity warning->critical" in ev[0].changes and ev[0].notifies
    ev = book.update(T, 6, [f("queue_buildup", 0, "warning")], engine="vllm-v1", model="m")
    assert inc.severity == "critical" and not ev[0].notifies  # the anomaly calmed; the incident's story did not
    assert ev[0].changes == ("queue_buildup: critical->warning",)
    book.update(T, 9, [], engine="vllm-v1", model="m")
    d = inc.to_dict()
    assert [(e["kind"], e["severity"]) for e in d["events"]] == [
        ("opened", "warning"), ("updated", "critical"), ("updated", "critical"), ("resolved", "critical")]
    assert d["peak_severity"] == "critical"


def test_event_doc_carries_its_time() -> None:
    book = IncidentBook()
    ev = book.update(T, 7.5, [f("kv_pressure", 7.5)], engine="vllm-v1", model="m")[0]
    doc = ev.to_dict()
    assert doc["event"] == "incident.opened" and doc["ts"] == 7.5
    assert doc["incident"]["events"] == [{"ts": 7.5, "kind": "opened", "severity": "warning",
                                          "changes": ["+kv_pressure"]}]


def test_a_long_incident_keeps_its_opening_and_its_newest_story() -> None:
    from inferguard.incidents import incident_from_dict
    from inferguard.incidents.lifecycle import MAX_DIAGNOSES, MAX_EVENTS

    book = IncidentBook()
    inc = book.update(T, 0, [f("kv_pressure", 0)], engine="vllm-v1", model="m")[0].incident
    for i in range(1, MAX_EVENTS + 50):  # a code that comes and goes for weeks: one event each time
        book.update(T, float(i), [f("kv_pressure", 0)] + ([f("queue_buildup", i)] if i % 2 else []),
                    engine="vllm-v1", model="m")
        inc.apply_diagnosis(float(i), {"root_cause": "kv_cache_exhaustion", "confidence": 0.5 + (i % 2) / 10},
                            [], "rules")
    d = inc.to_dict()
    assert len(d["events"]) == MAX_EVENTS and len(d["diagnoses"]) == MAX_DIAGNOSES
    assert d["events"][0]["kind"] == "opened" and d["events"][-1]["ts"] == MAX_EVENTS + 49
    assert d["dropped"] == (MAX_EVENTS + 49 - MAX_EVENTS + 1) + (MAX_EVENTS + 49 - MAX_DIAGNOSES)
    assert incident_from_dict(d).dropped == d["dropped"]  # a restart keeps the count


def test_the_daemons_book_keeps_a_bounded_history_and_every_open_incident() -> None:
    book = IncidentBook(resolve_after=1, keep_resolved=10)
    targets = [f"http://10.0.0.{i}:8000/metrics" for i in range(3)]
    open_one = book.update(targets[2], 0, [f("kv_pressure", 0)], engine="vllm-v1", model="m")[0].incident
    ids = []
    for i in range(200):
        t = targets[i % 2]
        ts = 1000.0 * i  # far enough apart to be new incidents, not flaps of one
        ids.append(book.update(t, ts, [f("kv_pressure", ts)], engine="vllm-v1", model="m")[0].incident.id)
        book.update(t, ts + 5, [], engine="vllm-v1", model="m")  # resolved
    resolved = [i for i in book.history if i.resolved_at is not None]
    assert 10 <= len(resolved) <= 2 * 10 and open_one in book.history
    assert book.get(open_one.id) is open_one and book.get(ids[-1]) is not None and book.get(ids[0]) is None
    assert len(IncidentBook().history) == 0  # unbounded by default (replay reports every incident)
