"""The daemon with an LLM configured: the rules answer at once, the LLM refines it off the loop, and an
LLM that is down or slow never stops monitoring. The LLM is rlm_agent.testing.RecordedLLMServer, a
loopback test double speaking the OpenAI protocol to the real openai SDK (the hosted LLM is unreachable)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from inferguard.config import Settings
from inferguard.models import Target
from inferguard.runtime.build import build_daemon
from inferguard.runtime.daemon import Daemon, DaemonOptions
from rlm_agent.evals.runner import load_cases
from rlm_agent.testing import RecordedLLMServer, Reply
from tests.support import free_port, serve

PAGE = """# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 30.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 38.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.99
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} NUM
"""
GOOD = next(c for c in load_cases() if c["name"] == "real_vllm_kv_overload")["llm_recorded"]["good"]


@pytest.fixture
def engine() -> Iterator[str]:
    count = [0]

    def page(_: str) -> bytes:
        count[0] += 15  # a preemption storm: the counter climbs every scrape
        return PAGE.replace("NUM", f"{count[0]}.0").encode()

    with serve(page) as base:
        yield base + "/metrics"


async def watch(url: str, base_url: str, seconds: float) -> tuple[Daemon, list[dict[str, Any]]]:
    settings = Settings.load(env_file=None, brain={"gmi_api_key": "sk-test-secret", "gmi_base_url": base_url,
                                                   "llm_timeout_seconds": 2.0, "proactive_cycle_every": 0})
    out = io.StringIO()
    daemon = build_daemon(settings, [Target(url=url)],
                    DaemonOptions(interval_s=0.3, listen=None, duration_s=seconds, log_format="json", out=out))
    await daemon.run()
    text = out.getvalue()
    assert "sk-test-secret" not in text  # the key never reaches a log line
    return daemon, [json.loads(line) for line in text.splitlines()]


async def test_llm_refines_the_rules_diagnosis(engine: str) -> None:
    with RecordedLLMServer() as llm:
        llm.default = Reply.answer(GOOD)
        _, events = await watch(engine, llm.base_url, 3.0)
        assert llm.requests, "the LLM was never asked"
        # The key travels only where it must: the Authorization header, never the prompt.
        assert all("sk-test-secret" not in json.dumps(r["body"]) for r in llm.requests)
        assert all({k.lower(): v for k, v in r["headers"].items()}["authorization"] == "Bearer sk-test-secret"
                   for r in llm.requests)
    opened = next(e for e in events if e["event"] == "incident.opened")
    assert opened["incident"]["diagnosis"]["source"] == "rules"  # at once, before any LLM answer
    refined = [e for e in events if e["event"] == "incident.updated" and "diagnosis:llm" in e["changes"]]
    assert refined and refined[0]["incident"]["diagnosis"]["root_cause"] == "kv_cache_exhaustion"
    cycles = [e for e in events if e["event"] == "cycle"]
    assert len(cycles) >= 5


async def test_llm_down_or_slow_never_stops_monitoring(engine: str) -> None:
    # Down: connection refused. The rules diagnosis stands and every cycle still runs.
    _, events = await watch(engine, f"http://127.0.0.1:{free_port()}/v1", 3.0)
    assert len([e for e in events if e["event"] == "cycle"]) >= 5
    opened = next(e for e in events if e["event"] == "incident.opened")
    assert opened["incident"]["diagnosis"]["root_cause"] == "kv_cache_exhaustion"
    fallbacks = [e for e in events if e["event"] == "incident.updated"
                 and any(c.startswith("diagnosis:rules (") for c in e["changes"])]
    failures = [e for e in events if e["event"] == "brain.failed"]
    assert fallbacks or failures  # the operator is told why the LLM is absent
    # Slow: every answer takes longer than the 2 s timeout; cycles keep their 0.3 s pace meanwhile.
    with RecordedLLMServer() as llm:
        llm.default = Reply.slow(GOOD, delay_s=5.0)
        with anyio.fail_after(20):
            _, slow_events = await watch(engine, llm.base_url, 3.0)
    assert len([e for e in slow_events if e["event"] == "cycle"]) >= 5


async def test_proactive_advice_arrives_before_any_incident() -> None:
    step = [0]

    def page(_: str) -> bytes:
        step[0] += 1  # KV climbing steadily, still below any threshold
        kv = min(0.1 + 0.03 * step[0], 0.45)  # under 0.5, where the detector's own time-to-full starts
        return (PAGE.replace("NUM", "0.0").replace("} 0.99", f"}} {kv:.3f}")
                .replace("} 38.0", "} 0.0").replace("} 30.0", f"}} {4 + step[0]}.0")).encode()

    with serve(page) as base:
        settings = Settings.load(env_file=None, brain={"proactive_cycle_every": 3})
        out = io.StringIO()
        daemon = build_daemon(settings, [Target(url=base + "/metrics")],
                        DaemonOptions(interval_s=0.3, listen=None, duration_s=4.5, log_format="json", out=out))
        await daemon.run()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert not [e for e in events if e["event"].startswith("incident.")]
    advice = [e for e in events if e["event"] == "advisory.proactive"]
    assert advice, [e["event"] for e in events]
    actions = {a["action"] for a in advice[-1]["answer"]["advisories"]}
    assert "throttle_concurrency" in actions
    assert all(a["advisory_only"] and a.get("proactive") for a in advice[-1]["answer"]["advisories"])


async def test_a_defect_on_one_target_does_not_stop_the_others(engine: str) -> None:
    settings = Settings.load(env_file=None, brain={"proactive_cycle_every": 0})
    out = io.StringIO()
    with serve(lambda _: b'vllm:num_requests_running{model_name="m"} 1\\n') as other:
        targets = [Target(url=engine), Target(url=other + "/metrics")]
        # 3 s of 0.3 s cycles: room for a loaded machine to still finish four of them.
        daemon = build_daemon(settings, targets,
                              DaemonOptions(interval_s=0.3, listen=None, duration_s=3.0, log_format="json", out=out))

        class Exploding:
            def update(self, *_: object) -> None:
                raise RuntimeError("a bug in one normaliser")

        daemon.pipeline._state(engine).normaliser = Exploding()  # type: ignore[assignment]
        await daemon.run()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    failed = [e for e in events if e["event"] == "pipeline.failed"]
    assert failed and all(e["target"] == engine for e in failed)
    cycles = [e for e in events if e["event"] == "cycle"]
    # Every cycle saw both targets: scraped, or (on a loaded machine) still in flight from the last one.
    assert len(cycles) >= 4 and all(c["scraped"] + c.get("still_in_flight", 0) == 2 for c in cycles)
    stopped = next(e for e in events if e["event"] == "watch.stopped")
    assert stopped["internal_errors"] == len(failed)
