"""inferguard_open_anomalies carries severity and the targets file's labels, with bounded label names."""

from __future__ import annotations

from inferguard.telemetry import MAX_TARGET_LABELS, Telemetry, target_label_names


def test_open_anomalies_carry_severity_and_target_labels() -> None:
    names = target_label_names([{"cluster": "eu-1", "team": "search"}, {"cluster": "us-2", "bad-name": "x",
                                                                         "severity": "spoof"}])
    assert names == ("cluster", "team")
    t = Telemetry(target_labels=names)
    inc = {"target": "http://a:8000/metrics", "labels": {"cluster": "eu-1", "team": "search"},
           "anomalies": [{"code": "kv_pressure", "severity": "critical", "active": True},
                         {"code": "queue_buildup", "severity": "warning", "active": False}]}
    t.show_open_anomalies([inc])
    got = t.registry.get_sample_value("inferguard_open_anomalies", {
        "target": "http://a:8000/metrics", "code": "kv_pressure", "severity": "critical", "cluster": "eu-1",
        "team": "search"})
    assert got == 1.0
    assert t.registry.get_sample_value("inferguard_open_anomalies", {
        "target": "http://a:8000/metrics", "code": "queue_buildup", "severity": "warning", "cluster": "eu-1",
        "team": "search"}) is None
    t.show_open_anomalies([])  # cleared incidents leave no stale series
    assert t.registry.get_sample_value("inferguard_open_anomalies", {
        "target": "http://a:8000/metrics", "code": "kv_pressure", "severity": "critical", "cluster": "eu-1",
        "team": "search"}) is None


def test_target_label_names_are_capped() -> None:
    many = [{f"label{i:02d}": "v" for i in range(30)}]
    assert len(target_label_names(many)) == MAX_TARGET_LABELS
