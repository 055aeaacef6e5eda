"""What the terminal shows, rendered at fixed widths without a terminal: columns that fit, names that
tell targets apart, the latest incident in detail, and text from targets never parsed as markup."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from inferguard.terminal import Snapshot, TargetRow, changes_text, event_line, render, short_names

A, B, C = ("http://vllm-a.internal:8000/metrics", "http://vllm-b.internal:8000/metrics",
           "http://10.0.0.3:30000/metrics")
VALUES = {"kv_usage": 0.93, "requests_waiting": 31, "requests_running": 12, "preemptions_per_s": 2.5,
          "ttft_p95_s": 1.234, "prefix_cache_hit_ratio": 0.41}
INCIDENT: dict[str, Any] = {
    "id": "inc-1", "target": A, "model": "meta-llama/Llama-3.1-8B-Instruct", "severity": "critical",
    "resolved_at": None, "updated_at": 5.0, "opened_at": 1.0,
    "anomalies": [{"code": "kv_pressure", "severity": "critical", "active": True, "summary": "KV cache 93% full"},
                  {"code": "queue_buildup", "severity": "warning", "active": True, "summary": "31 waiting"}],
    "diagnosis": {"root_cause": "kv_cache_exhaustion", "source": "rules", "confidence": 0.82,
                  "summary": "The KV cache is full.", "fallback_reason": "llm_budget_exhausted"},
    "advisories": [{"action": "throttle_concurrency", "horizon": "now", "engine_steps": ["lower --max-num-seqs"]}]}


def snapshot(model_b: str = "qwen") -> Snapshot:
    names = short_names([(A, ""), (B, ""), (C, "")])
    rows = [TargetRow(A, names[A], "vllm-v1", "meta-llama/Llama-3.1-8B-Instruct", VALUES, "critical",
                      ("kv_pressure", "queue_buildup")),
            TargetRow(B, names[B], "vllm-v1", model_b, {"kv_usage": 0.2}, "ok"),
            TargetRow(C, names[C], "sglang", "-", {}, "down", (), "HTTP 404 at /metrics", "HTTP 404")]
    proactive = {B: {"diagnosis": {"summary": "KV full in about 70 s"},
                     "advisories": [{"action": "raise_batch_capacity", "horizon": "minutes"}]}}
    return Snapshot(rows=rows, incidents=[INCIDENT], proactive=proactive, brain_failures=2,
                    brain_error="timeout", names=names)


def screen(snap: Snapshot, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None, force_terminal=False)
    console.print(render(snap, width))
    return console.export_text().splitlines()


def test_names_are_the_shortest_distinguishing_part_of_the_url_or_the_configured_name() -> None:
    assert short_names([(A, ""), (B, ""), (C, "")]) == {A: "vllm-a", B: "vllm-b", C: "10.0.0.3"}
    two_ports = short_names([("http://10.0.0.3:8001/metrics", ""), ("http://10.0.0.3:8002/metrics", "")])
    assert list(two_ports.values()) == ["10.0.0.3:8001", "10.0.0.3:8002"]
    same_host = short_names([("http://h:8000/a/metrics", ""), ("http://h:8000/b/metrics", "")])
    assert list(same_host.values()) == ["h:8000/a", "h:8000/b"]
    assert short_names([(A, "prod-eu")]) == {A: "prod-eu"}
    assert short_names([("http://user:pw@h:8000/metrics", "")]) == {"http://user:pw@h:8000/metrics": "h"}


def test_at_160_columns_every_column_and_the_detail_area_show() -> None:
    lines = screen(snapshot(), 160)
    header = next(line for line in lines if line.startswith("target"))
    for col in ("state", "KV", "wait", "run", "preempt/s", "TTFT p95", "prefix hit", "model", "engine"):
        assert col in header
    text = "\n".join(lines)
    assert "critical kv_pressure +1" in text and "93%" in text and "meta-llama/Llama-3.1-8B-Instruct" in text
    assert "down: HTTP 404" in text and "10.0.0.3: HTTP 404 at /metrics" in text
    assert "diagnosis: kv_cache_exhaustion (rules, confidence 0.82)" in text
    assert "LLM not used: llm_budget_exhausted" in text
    assert "advice: throttle_concurrency (now) lower --max-num-seqs" in text
    assert "proactive vllm-b: KV full in about 70 s" in text and "raise_batch_capacity" in text
    assert "2 LLM/remote call(s) failed" in text and "timeout" in text


def test_at_80_columns_nothing_is_cut_and_the_least_useful_columns_go_first() -> None:
    lines = screen(snapshot(), 80)
    header = next(line for line in lines if line.startswith("target"))
    assert "engine" not in header and "model" not in header and "prefix hit" not in header
    assert all(col in header for col in ("state", "KV", "wait", "preempt/s"))
    rows = [line for line in lines if line.startswith(("vllm-a", "vllm-b", "10.0.0.3 "))]
    assert [r.split()[0] for r in rows] == ["vllm-a", "vllm-b", "10.0.0.3"]
    assert "critical kv_pressure +1" in rows[0] and "…" not in "\n".join(rows)
    assert max(len(line) for line in lines) <= 80


def test_at_40_columns_target_and_state_still_show() -> None:
    lines = screen(snapshot(), 40)
    header = next(line for line in lines if line.startswith("target"))
    assert header.split()[:2] == ["target", "state"]
    assert any(line.startswith("vllm-a") and "critical" in line for line in lines)


def test_text_from_a_target_is_shown_literally_never_as_markup() -> None:
    lines = screen(snapshot(model_b='[/]evil[bold red]'), 160)
    assert any('[/]evil[bold red]' in line for line in lines)
    event = {"event": "incident.opened", "changes": ["+kv_pressure"],
             "incident": INCIDENT | {"target": "http://[/]:8000/metrics", "severity": "[/]"}}
    console = Console(width=120, record=True, color_system=None)
    console.print(event_line(event, {}))
    assert "http://[/]:8000/metrics [[/]] +kv_pressure" in console.export_text()


def test_changes_are_said_once() -> None:
    assert changes_text(["kv_pressure: warning->critical", "severity warning->critical"]) == \
        "kv_pressure: warning->critical"
    both = ["+queue_buildup", "severity warning->critical"]
    assert changes_text(both) == "+queue_buildup, severity warning->critical"
    resolved = {"event": "incident.resolved", "changes": ["all anomalies cleared"], "incident": INCIDENT}
    console = Console(width=200, record=True, color_system=None)
    console.print(event_line(resolved, {A: "vllm-a"}))
    line = console.export_text()
    assert line.count("all anomalies cleared") == 1 and "vllm-a" in line and "view.py" not in line
