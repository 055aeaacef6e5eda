"""The actuation gate's order of refusals and the verification's judgement, on plain numbers."""

from __future__ import annotations

import math
from typing import Any

from inferguard.actuation import gate
from inferguard.actuation.signing import sign
from inferguard.actuation.verify import compare, judge, with_probe

CFG = gate.GateConfig(mode="live", allowlist=frozenset({"throttle_concurrency"}), min_confidence=0.7)


def decide(adv: dict[str, Any], inc: dict[str, Any], cfg: gate.GateConfig = CFG, state: Any = None) -> str:
    return gate.decide(cfg, state or gate.empty_state(), adv, inc, "k", 0.0)[1]


def test_refusals_name_their_reason() -> None:
    adv = {"action": "throttle_concurrency", "confidence": 0.9}
    inc = {"target": "t", "status": "open", "resolved_at": None}
    assert decide(adv, inc) == "allowed"
    assert decide(adv, inc, gate.GateConfig(mode="off", allowlist=CFG.allowlist)) == "actuation is off"
    assert "ALLOWLIST" in decide({**adv, "action": "scale_out"}, inc)
    assert "synthetic" in decide(adv, {**inc, "synthetic": True})
    assert "synthetic" in decide(adv, {**inc, "diagnosis": {"claim_status": "synthetic"}})
    assert "resolved" in decide(adv, {**inc, "status": "resolved", "resolved_at": 5.0})
    assert decide({**adv, "confidence": 0.69}, inc).startswith("low confidence")
    assert decide({"action": "throttle_concurrency"}, inc).startswith("low confidence")
    dry = gate.GateConfig(mode="dry_run", allowlist=CFG.allowlist)
    assert gate.decide(dry, gate.empty_state(), adv, inc, "k", 0.0)[0] == "dry_run"


def test_breaker_opens_after_consecutive_failures_only() -> None:
    state = gate.empty_state()
    cfg = gate.GateConfig(mode="live", breaker_failures=3, breaker_reset_s=600)
    assert not gate.record_result(cfg, state, False, 0)
    assert not gate.record_result(cfg, state, True, 1)  # a success in between resets the count
    assert not gate.record_result(cfg, state, False, 2)
    assert not gate.record_result(cfg, state, False, 3)
    assert gate.record_result(cfg, state, False, 4)
    assert state["open_until"] == 604


def test_judge_and_compare() -> None:
    assert judge("kv_usage", 1.0, 0.5) == "improved"
    assert judge("kv_usage", 0.5, 0.9) == "worse"
    assert judge("kv_usage", 1.0, 0.97) == "unchanged"
    assert judge("prefix_cache_hit_ratio", 0.2, 0.6) == "improved"
    assert judge("requests_waiting", 30, None) == "unknown"
    out = compare({"kv_usage": 1.0, "preemptions_per_s": 2.0, "requests_waiting": 30.0},
                  {"kv_usage": 0.6, "preemptions_per_s": 0.0, "requests_waiting": math.nan})
    assert out["outcome"] == "improved" and out["signals"]["requests_waiting"]["verdict"] == "unknown"
    assert compare({"kv_usage": 0.5}, {"kv_usage": 0.9})["outcome"] == "worse"
    assert compare({"kv_usage": 0.5}, {})["outcome"] == "unknown"
    assert compare({"kv_usage": 0.5, "requests_waiting": 10}, {"kv_usage": 0.9, "requests_waiting": 1})[
        "outcome"] == "unchanged"


def test_a_probe_has_the_last_word_only_against_improvement() -> None:
    ok = {"ok": True, "ran": True, "ttft_s": 0.1}
    failed = {"ok": False, "ran": True, "ttft_s": None, "error": "HTTP 502"}
    not_run = {"ok": False, "ran": False, "ttft_s": None, "error": "the probe could not start"}
    for signals in ("improved", "unchanged", "worse", "unknown"):
        assert with_probe(signals, None) == signals  # no probe configured: the signals alone
        assert with_probe(signals, ok) == signals  # users served: the signals decide
        assert with_probe(signals, failed) == "worse"  # users failing after the action
    # A probe that did not run confirms nothing: never counted as improved, and never invents "worse".
    assert [with_probe(s, not_run) for s in ("improved", "unchanged", "worse", "unknown")] == [
        "unknown", "unchanged", "worse", "unknown"]
    # ok without ran (a malformed result) is not a success.
    assert with_probe("improved", {"ok": True, "ran": False}) == "unknown"


def test_signature_covers_timestamp_and_body() -> None:
    s = sign("secret", "100", b"{}")
    assert s.startswith("sha256=") and len(s) == 7 + 64
    assert s != sign("secret", "101", b"{}") and s != sign("secret", "100", b"{ }") and s != sign("other", "100", b"{}")
