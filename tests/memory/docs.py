"""Real incident event documents for the memory tests, made by the real IncidentBook from Findings."""

from __future__ import annotations

from typing import Any

from inferguard.incidents import IncidentBook
from inferguard.models import Evidence, Finding

KV = ("kv_pressure", "KV cache 97% full; requests are being preempted",
      (("kv_usage", 0.97), ("preemptions_per_s", 3.0)))
QUEUE = ("queue_buildup", "42 requests waiting for a batch slot", (("requests_waiting", 42.0),))
TTFT = ("ttft_regression", "TTFT p95 4.1 s, 3.2x its healthy baseline", (("ttft_p95_s", 4.1),))
DOWN = ("endpoint_unreachable", "scrape failed: refused", ())


def finding(target: str, ts: float, spec: tuple[str, str, tuple[tuple[str, float], ...]],
            severity: str = "critical", model: str = "llama-3-8b") -> Finding:
    code, text, evidence = spec
    return Finding(code=code, target=target, model=model, severity=severity, ts=ts, summary=text,  # type: ignore[arg-type]
                   evidence=tuple(Evidence(s, v, None, ">") for s, v in evidence))


def story(target: str, t0: float, *specs: tuple[str, str, tuple[tuple[str, float], ...]],
          engine: str = "vllm-v1", book: IncidentBook | None = None,
          diagnosis: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """opened → updated (diagnosis) → resolved for one incident, as the event documents the daemon emits."""
    book = book or IncidentBook(resolve_after=1)
    fs = [finding(target, t0, s) for s in specs]
    docs = [ev.to_dict() for ev in book.update(target, t0, fs, engine=engine, model="llama-3-8b")]
    inc = book.open_incidents()[0]
    inc.apply_diagnosis(t0 + 5, diagnosis or {"root_cause": specs[0][0], "confidence": 0.8,
                                              "summary": f"{specs[0][1]} (rules)"},
                        [{"action": "reduce_max_num_seqs", "engine_steps": ["lower --max-num-seqs"]}], "rules")
    inc.updated_at = t0 + 5
    docs.append({"event": "incident.updated", "changes": ["diagnosis:rules"], "incident": inc.to_dict()})
    docs += [ev.to_dict() for ev in book.update(target, t0 + 60, [], engine=engine, model="llama-3-8b")]
    return docs
