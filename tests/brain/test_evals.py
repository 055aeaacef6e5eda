"""CI runs every labelled case: the rules, and the LLM path through the real openai SDK against the
recorded-answer double (good, wrong, malformed, slow)."""

from __future__ import annotations

import pytest

from rlm_agent.cli import main
from rlm_agent.evals.runner import load_cases, run_double, run_rules, table
from rlm_agent.testing import RecordedLLMServer, Reply

from .conftest import CASES


def test_cases_cover_every_action_and_root_cause() -> None:
    from rlm_agent.vocab import ACTIONS, ROOT_CAUSES

    required = {a for c in CASES.values() for a in c["expect"]["required_advisories"]}
    roots = {c["expect"]["root_cause"] for c in CASES.values()}
    assert required == set(ACTIONS)
    assert roots == set(ROOT_CAUSES)
    assert any(c["source"].startswith("real-vllm") for c in CASES.values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_rules_case(name: str) -> None:
    [result] = run_rules([CASES[name]])
    assert result.passed, table([result])


async def test_llm_double_good_wrong_malformed() -> None:
    cases = load_cases()
    results = await run_double(cases, variants=("good", "wrong", "malformed"))
    assert len(results) == 3 * len(cases)
    assert all(r.passed for r in results), table(results)
    by_variant = {v: [r for r in results if r.mode.endswith(v)] for v in ("good", "wrong", "malformed")}
    assert all(r.source == "llm" for r in by_variant["good"])
    assert all(r.source == "rules" and (r.fallback_reason or "").startswith("llm_contradicted")
               for r in by_variant["wrong"])
    # Each recorded wrong answer cites real values: the check rejecting it is never "no such value".
    assert not [r.case for r in by_variant["wrong"] if "evidence values occur" in (r.fallback_reason or "")]
    assert all(r.fallback_reason == "llm_invalid_json: the model's answer is not JSON"
               for r in by_variant["malformed"])


async def test_llm_double_slow_falls_back_to_rules() -> None:
    cases = [CASES["real_vllm_kv_overload"], CASES["real_vllm_admission_overload"]]
    results = await run_double(cases, slow_timeout_s=0.3, variants=("slow",))
    assert [r.passed for r in results] == [True, True], table(results)
    assert all((r.fallback_reason or "").startswith("llm_timeout") for r in results)


def test_cli_eval_prints_the_accuracy_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval"]) == 0
    out = capsys.readouterr().out
    assert "root cause" in out and f"rules{' ' * 17}{len(CASES):>6}" in out


async def test_live_mode_runs_the_cases_against_a_configured_endpoint(llm_server: RecordedLLMServer) -> None:
    from rlm_agent import LLMSettings
    from rlm_agent.evals.runner import run_live

    cases = [CASES["real_vllm_kv_overload"], CASES["engine_down"]]
    llm_server.push(*(Reply.answer(c["llm_recorded"]["good"]) for c in cases))
    results, usage = await run_live(cases, LLMSettings(api_key="k", base_url=llm_server.base_url, timeout_s=10))
    assert [(r.mode, r.passed, r.source) for r in results] == [("llm-live", True, "llm")] * 2
    assert usage["calls"] == 2 and usage["prompt_tokens"] > 0


def test_cli_live_without_a_key_says_so(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GMI_API_KEY", raising=False)
    assert main(["eval", "--live"]) == 2
    assert "GMI_API_KEY is not set" in capsys.readouterr().err
