"""Actuation over real loopback HTTP: off sends nothing, dry_run records, live sends only allowlisted
actions, signed; cooldowns, the hourly budget and the circuit breaker hold; verification lands on the
incident. The receiver is the example in deploy/actuation-receiver/ (run as a process) or a recorder."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import pytest

from inferguard.actuation import GateConfig, WebhookActuator, audit_log
from inferguard.actuation.verify import compare
from inferguard.config import Settings
from inferguard.errors import ConfigError
from inferguard.models import Target
from inferguard.runtime.build import build_actuator
from inferguard.runtime.oneshot import replay_outputs
from inferguard.runtime.probing import probe_runner
from inferguard.testing import FakeClock
from tests.alerting_support import Clock, DictStateStore, receiver
from tests.support import clean_env, free_port

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
RECEIVER = ROOT / "deploy" / "actuation-receiver" / "receiver.py"
SECRET = "a-long-enough-test-secret"


def receiver_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("actuation_receiver", RECEIVER)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def advisory(action: str = "throttle_concurrency", confidence: float = 0.85) -> dict[str, Any]:
    return {"action": action, "confidence": confidence, "parameters": {"max_concurrency": 9},
            "evidence": [{"signal": "kv_usage", "value": 1.0}, {"signal": "preemptions_per_s", "value": 2.0}]}


def incident(iid: str = "inc-1", target: str = "http://e1/metrics", **extra: Any) -> dict[str, Any]:
    return {"id": iid, "target": target, "engine": "vllm-v1", "model": "m", "severity": "critical",
            "status": "open", "resolved_at": None, "synthetic": False,
            "diagnosis": {"root_cause": "kv_cache_exhaustion", "claim_status": "inferred"}, **extra}


def live(url: str, store: DictStateStore, clock: Clock, **cfg: Any) -> WebhookActuator:
    config = GateConfig(mode="live", allowlist=frozenset({"throttle_concurrency"}), **cfg)
    return WebhookActuator(config, store, endpoint=url, secret=SECRET, verify_delay_s=30, clock=clock)


def settings(**actuation: Any) -> Settings:
    return Settings.load(env_file=None, actuation=actuation)


async def test_off_builds_nothing_and_sends_nothing() -> None:
    assert build_actuator(settings(), DictStateStore()) is None
    with receiver() as rec:
        act = WebhookActuator(GateConfig(mode="off", allowlist=frozenset({"throttle_concurrency"})), DictStateStore())
        entry = await act.act(advisory(), incident())
        await act.aclose()
        assert entry["outcome"] == "denied" and entry["reason"] == "actuation is off" and rec.attempts == 0


async def test_dry_run_over_a_real_timeline_records_and_sends_nothing() -> None:
    with receiver() as rec:
        store = DictStateStore()
        clock = FakeClock(0.0)
        act = build_actuator(settings(mode="dry_run", endpoint=f"{rec.url}/act",
                                      allowlist="throttle_concurrency"), store, clock=clock)
        assert act is not None
        await replay_outputs(DATA / "vllm_kv_overload.jsonl.gz", Settings.load(env_file=None), clock, actuator=act)
        await act.aclose()
        assert rec.attempts == 0
        entries = await audit_log(store)
        outcomes = {(e["action"], e["outcome"]) for e in entries}
        assert ("throttle_concurrency", "dry_run") in outcomes and ("scale_out", "denied") in outcomes
        dry = next(e for e in entries if e["outcome"] == "dry_run")
        assert dry["would_send"]["action"] == "throttle_concurrency"
        assert dry["would_send"]["parameters"]["max_concurrency"] >= 1


async def test_live_over_a_real_timeline_sends_only_allowlisted_signed_and_verifies() -> None:
    verify = receiver_module().verify_inferguard_request
    with receiver() as rec:
        store = DictStateStore()
        clock = FakeClock(0.0)
        act = build_actuator(settings(mode="live", endpoint=f"{rec.url}/act", allowlist="throttle_concurrency",
                                      secret=SECRET, verify_delay=9), store, clock=clock)
        assert act is not None
        pipeline = await replay_outputs(DATA / "vllm_kv_overload.jsonl.gz", Settings.load(env_file=None), clock,
                                        actuator=act)
        await act.aclose()
        (req,) = rec.on("/act")
        body = req.json()
        assert body["action"] == "throttle_concurrency" and body["idempotency_key"] == req.headers["Idempotency-Key"]
        # The documented verification accepts it, at the time it was signed.
        headers = {k.lower(): v for k, v in req.headers.items()}
        assert verify(SECRET.encode(), headers, req.raw, {}, now=float(headers["x-inferguard-timestamp"])) == "ok"
        with pytest.raises(ValueError, match="bad signature"):
            verify(b"another-secret-entirely", headers, req.raw, {}, now=float(headers["x-inferguard-timestamp"]))
        (inc,) = pipeline.book.history
        sent, verified = inc.actions
        assert sent["outcome"] == "sent" and verified["outcome"] == "verified"
        assert verified["ts"] - sent["ts"] >= 9
        # The signals compared are the ones that triggered the action, with their values then.
        before = {e["signal"]: e["value"] for e in body["evidence"] if isinstance(e["value"], float)}
        assert {s: v["before"] for s, v in verified["signals"].items()} == before
        after = {s: v["after"] for s, v in verified["signals"].items() if v["after"] is not None}
        assert verified["verification"] == compare(before, after)["outcome"]
        assert inc.to_dict()["actions"] == inc.actions
        denied = [e for e in await audit_log(store) if e["outcome"] == "denied"]
        assert any(e["action"] == "scale_out" and "ALLOWLIST" in e["reason"] for e in denied)


class BrokenProbe:
    """A probe plugin with a defect: it raises instead of returning a result."""

    async def probe(self, target: Target) -> dict[str, Any]:
        raise RuntimeError("plugin bug")

    async def aclose(self) -> None:
        return None


class HeldProbe:
    """A probe that answers only when the test lets it (a slow engine), then succeeds."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.started = anyio.Event()

    async def probe(self, target: Target) -> dict[str, Any]:
        self.started.set()
        await self.release.wait()
        return {"ok": True, "ran": True, "status": 200, "ttft_s": 0.05, "tpot_s": 0.01, "tokens": 4, "error": None}

    async def aclose(self) -> None:
        return None


async def test_a_probe_that_did_not_run_says_so_and_never_counts_as_improved() -> None:
    with receiver() as rec:
        clock = Clock()
        store = DictStateStore()
        act = live(f"{rec.url}/act", store, clock)
        assert (await act.act(advisory(), incident()))["outcome"] == "sent"
        clock.now += 31
        better = {"kv_usage": 0.5, "preemptions_per_s": 0.0}  # both trigger signals improved
        (entry,) = await act.verify_due(lambda t, m: better, probe_runner(BrokenProbe(), [], 5))
        await act.aclose()
    assert entry["signals_verdict"] == "improved" and entry["verification"] == "unknown"
    assert entry["probe"]["ran"] is False and entry["probe"]["ok"] is False
    assert "RuntimeError: plugin bug" in entry["probe"]["error"]
    assert (await audit_log(store))[-1] == entry


async def test_a_decision_never_waits_for_a_verification_probe() -> None:
    with receiver() as rec:
        clock = Clock()
        act = live(f"{rec.url}/act", DictStateStore(), clock)
        await act.act(advisory(), incident("inc-1"))
        clock.now += 31
        held = HeldProbe()
        done: list[dict[str, Any]] = []

        async def verify() -> None:
            done.extend(await act.verify_due(lambda t, m: {"kv_usage": 0.5}, probe_runner(held, [], 5)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(verify)
            await held.started.wait()
            # The probe is in flight: a second verification pass does not judge the same action again, and
            # another target's action is decided and sent meanwhile.
            assert await act.verify_due(lambda t, m: {}) == []
            other = await act.act(advisory(), incident("inc-2", target="http://e2/metrics"))
            assert other["outcome"] == "sent"
            held.release.set()
        await act.aclose()
    (entry,) = done
    assert entry["incident"] == "inc-1" and entry["probe"]["ok"] is True and entry["verification"] == "improved"


async def test_cooldowns_budget_and_never_live_for_low_confidence_or_synthetic() -> None:
    with receiver() as rec:
        clock = Clock()
        act = live(f"{rec.url}/act", DictStateStore(), clock, cooldown_s=1800, target_cooldown_s=300, max_per_hour=2)
        assert (await act.act(advisory(), incident("inc-1")))["outcome"] == "sent"
        assert (await act.act(advisory(), incident("inc-1")))["reason"].startswith("already sent")
        clock.now += 600  # past the target cooldown, inside the action's cooldown on that target
        assert (await act.act(advisory(), incident("inc-2")))["reason"].startswith("cooldown")
        assert (await act.act(advisory(), incident("inc-3", target="http://e2/metrics")))["outcome"] == "sent"
        clock.now += 10
        third = await act.act(advisory(), incident("inc-4", target="http://e3/metrics"))
        assert third["outcome"] == "denied" and third["reason"].startswith("hourly budget")
        low = await act.act(advisory(confidence=0.4), incident("inc-5", target="http://e4/metrics"))
        assert low["outcome"] == "denied" and low["reason"].startswith("low confidence")
        synth = await act.act(advisory(), incident("inc-6", target="http://e5/metrics", synthetic=True))
        assert synth["outcome"] == "denied" and "synthetic" in synth["reason"]
        await act.aclose()
        assert len(rec.on("/act")) == 2


async def test_target_cooldown_holds() -> None:
    with receiver() as rec:
        clock = Clock()
        act = live(f"{rec.url}/act", DictStateStore(), clock, target_cooldown_s=300)
        assert (await act.act(advisory(), incident("inc-1")))["outcome"] == "sent"
        other = {**advisory("throttle_concurrency"), "parameters": {"max_concurrency": 4}}
        clock.now += 299
        assert (await act.act(other, incident("inc-2")))["reason"].startswith("cooldown")
        await act.aclose()


async def test_breaker_opens_after_failures_and_closes_after_reset() -> None:
    with receiver() as rec:
        rec.reply = lambda req: (500, {"error": "engine admin down"})
        clock = Clock()
        act = live(f"{rec.url}/act", DictStateStore(), clock, breaker_failures=3, breaker_reset_s=600,
                   cooldown_s=0, target_cooldown_s=0, max_per_hour=100)
        results = []
        for n in range(4):
            results.append(await act.act(advisory(), incident(f"inc-{n}", target=f"http://e{n}/metrics")))
            clock.now += 1
        assert [r["outcome"] for r in results] == ["failed", "failed", "failed", "denied"]
        assert "HTTP 500" in results[0]["reason"] and results[3]["reason"].startswith("circuit breaker open")
        assert rec.attempts == 3
        rec.reply = lambda req: (204, {})
        clock.now += 600
        assert (await act.act(advisory(), incident("inc-9", target="http://e9/metrics")))["outcome"] == "sent"
        await act.aclose()


def test_live_without_endpoint_or_secret_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="INFERGUARD_ACTUATION_ENDPOINT"):
        build_actuator(settings(mode="live", allowlist="x", secret=SECRET), DictStateStore())
    with pytest.raises(ConfigError, match="INFERGUARD_ACTUATION_SECRET"):
        build_actuator(settings(mode="live", allowlist="x", endpoint="http://127.0.0.1:9/a"),
                       DictStateStore())


async def test_example_receiver_verifies_and_refuses_replays() -> None:
    port = free_port()
    env = clean_env() | {"INFERGUARD_ACTUATION_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, str(RECEIVER), "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["event"] == "listening"
        with receiver() as tap:  # a second endpoint records the exact bytes that were sent
            act = live(f"{tap.url}/act", DictStateStore(), Clock(time.time()))
            await act.act(advisory(), incident())
            await act.aclose()
            (req,) = tap.on("/act")
        url = f"http://127.0.0.1:{port}/act"
        async with httpx.AsyncClient(trust_env=False) as http:
            first = await http.post(url, content=req.raw, headers=req.headers)
            replayed = await http.post(url, content=req.raw, headers=req.headers)
            tampered = await http.post(url, content=req.raw.replace(b'"max_concurrency":9', b'"max_concurrency":1'),
                                       headers=req.headers)
            unsigned = await http.post(url, content=req.raw, headers={"Content-Type": "application/json"})
        assert (first.status_code, replayed.status_code, tampered.status_code, unsigned.status_code) == (
            204, 200, 401, 401)
        # A request captured and replayed after the tolerance is refused as stale.
        mod = receiver_module()
        headers = {k.lower(): v for k, v in req.headers.items()}
        with pytest.raises(ValueError, match="stale"):
            mod.verify_inferguard_request(SECRET.encode(), headers, req.raw, {},
                                          now=int(headers["x-inferguard-timestamp"]) + mod.TOLERANCE_S + 1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert events == ["accepted", "duplicate", "refused", "refused"]
    assert SECRET not in out


def test_docs_show_the_receivers_verification_snippet() -> None:
    code = RECEIVER.read_text()
    start = code.index("import hashlib")
    snippet = code[start:code.index("# --- end of verification snippet ---")].strip()
    docs = (ROOT / "docs" / "actuation.md").read_text()
    assert f"```python\n{snippet}\n```" in docs
