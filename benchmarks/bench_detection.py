"""Detection: InferGuard versus the public vLLM and llm-d example alert rules, over the same samples.

    python -m benchmarks.bench_detection [--healthy-minutes 60]

For every real-vLLM timeline in tests/data (recorded on this CPU; the phases file gives the onset),
report the time from onset to the first alert for InferGuard (a replay of the very pipeline `watch`
runs) and for each rule, evaluated with Prometheus semantics (benchmarks/promrules.py) over the very
same scrapes. Beside each delay, what a person would be told: the notifications-worth events of every
incident (opened, reopened, escalated, resolved; ``IncidentEvent.notifies``) and all its lifecycle
events. Then false alerts per hour of healthy traffic: the quiet phases of the real recordings, plus a
long healthy run of the simulator (synthetic, marked so) scraped like a real target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.promrules import CORRECTED, LLMD_RULES, VLLM_RULES, Series, firings
from inferguard.config import Settings
from inferguard.models import Scrape
from inferguard.runtime.oneshot import replay_scrapes
from inferguard.sources.exposition import ExpositionParser
from inferguard.sources.timeline import read_timeline

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
RULES = [*VLLM_RULES, *LLMD_RULES, *CORRECTED]
NAMES = {r.metric for r in RULES}
ONSET_PHASE = {"vllm_kv_overload": "overload", "vllm_admission_overload": "overload",
               "vllm_engine_restart": "down", "vllm_prefix_churn": "random", "vllm_startup_admission": "overload",
               "vllm_admission_drain": "overload", "vllm_busy_then_hot": "hot_coping",
               "vllm_hot_preempting": "hot_coping"}
QUIET_PHASES = ("idle", "healthy", "shared_prefix", "healthy_after", "quiet", "recovery", "busy_healthy")


def series_of(scrapes: list[Scrape]) -> dict[str, Series]:
    parser = ExpositionParser(keep=NAMES.__contains__)
    out: dict[str, Series] = defaultdict(list)
    for s in scrapes:
        if not s.ok:
            for name in NAMES:  # a failed scrape marks the target's series stale
                out[name].append((s.ts, None))
            continue
        exp = parser.parse(s.body or "")
        for name in NAMES:
            values = [v for _, v in exp.samples.get(name, [])]
            if values:
                out[name].append((s.ts, max(values)))
    return out


def inferguard_incidents(scrapes: list[Scrape]) -> list[dict[str, Any]]:
    incidents = asyncio.run(replay_scrapes(scrapes, Settings.load(env_file=None)))
    return sorted(incidents, key=lambda d: d["opened_at"])


def inferguard_alerts(scrapes: list[Scrape]) -> list[float]:
    return [d["opened_at"] for d in inferguard_incidents(scrapes)]


def notifications(incident: dict[str, Any]) -> dict[str, int]:
    """Count an incident's lifecycle events the way IncidentEvent.notifies judges them."""
    out = {"opened": 0, "reopened": 0, "escalated": 0, "resolved": 0, "events": len(incident["events"])}
    for e in incident["events"]:
        if e["kind"] == "updated":
            out["escalated"] += any(c.startswith("severity ") for c in e["changes"])
        else:
            out[e["kind"]] += 1
    out["notifications"] = out["opened"] + out["reopened"] + out["escalated"] + out["resolved"]
    return out


def notification_table(rows: list[tuple[str, list[dict[str, Any]], float]]) -> None:
    print("## what a person is told, per incident\n")
    print("| timeline | incident codes | opened after onset | severity | notifications (open / reopen / "
          "escalate / resolve) | all lifecycle events |")
    print("|---|---|---|---|---|---|")
    for name, incidents, onset in rows:
        for d in incidents:
            n = notifications(d)
            print(f"| {name} | {', '.join(d['codes'])} | {d['opened_at'] - onset:+.1f}s | {d['severity']} | "
                  f"**{n['notifications']}** ({n['opened']} / {n['reopened']} / {n['escalated']} / "
                  f"{n['resolved']}) | {n['events']} |")
    print()


def fmt(delay: float | None) -> str:
    return "never" if delay is None else f"{delay:7.1f}s"


def detection_table(lifecycles: list[tuple[str, list[dict[str, Any]], float]]) -> list[tuple[str, float, float]]:
    quiet: list[tuple[str, float, float]] = []
    print("\n## time from onset to first alert (real vLLM on this CPU)\n")
    for path in sorted(DATA.glob("vllm_*.jsonl.gz")):
        name = path.name.removesuffix(".jsonl.gz")
        meta = json.loads((DATA / f"{name}.phases.json").read_text())
        phases = {p["name"]: p for p in meta["phases"]}
        scrapes = list(read_timeline(path))
        start, end = scrapes[0].ts, scrapes[-1].ts
        onset = phases[ONSET_PHASE.get(name, "overload")]["start"] if ONSET_PHASE.get(name, "overload") in phases \
            else None
        # Quiet stretches before the onset only: what follows an incident is its tail, not healthy traffic.
        quiet += [(name, p["start"], p["end"]) for p in meta["phases"]
                  if p["name"] in QUIET_PHASES and (onset is None or p["end"] <= onset)]
        if onset is None:
            continue
        lasted = phases[ONSET_PHASE[name]]["end"] - onset
        print(f"### {name} (real; scrape interval {meta['interval_s']:g}s; the fault lasted {lasted:.0f}s)\n")
        compare(scrapes, onset, start, end)
        lifecycles.append((name, inferguard_incidents(scrapes), onset))
    return quiet


def compare(scrapes: list[Scrape], onset: float, start: float, end: float) -> None:
    print("| detector | first alert after onset |\n|---|---|")
    ours = [t for t in inferguard_alerts(scrapes) if t >= onset]
    print(f"| InferGuard | {fmt(ours[0] - onset if ours else None)} |")
    series = series_of(scrapes)
    for rule in RULES:
        s = series.get(rule.metric, [])
        if not any(v is not None for _, v in s):
            print(f"| {rule.name} | never (series `{rule.metric}` not exported) |")
            continue
        hit = next((t for t in firings(rule, s, start, end) if t >= onset), None)
        print(f"| {rule.name} | {fmt(None if hit is None else hit - onset)} |")
    print()


async def simulated(script: list[tuple[str, float]], interval_s: float = 5.0, speed: float = 50.0,
                    ) -> tuple[list[Scrape], dict[str, float]]:
    """Scrape a simulated engine (synthetic data) through ``script``: (scenario, simulated minutes) steps.
    Returns the scrapes and each step's simulated start time."""
    import httpx

    from inferguard.simulate.server import Simulator

    out: list[Scrape] = []
    starts: dict[str, float] = {}
    async with Simulator(dialect="vllm-v1", scenario="healthy", seed=3, speed=speed) as sim, \
            httpx.AsyncClient(trust_env=False) as client:
        url = sim.target_url(0) + "/metrics"
        failures = steps = 0
        for scenario, minutes in script:
            sim.set_scenario(scenario)
            starts.setdefault(scenario, sim.sim_now())
            until = sim.sim_now() + minutes * 60
            while sim.sim_now() < until:
                steps += 1
                failures += await _scrape_once(client, url, sim.sim_now(), out)
                await asyncio.sleep(interval_s / speed)
        if failures:
            print(f"(the simulator dropped {failures} of {steps} scrapes)")
    return out, starts


async def _scrape_once(client: Any, url: str, ts: float, out: list[Scrape]) -> int:
    import httpx

    try:
        r = await client.get(url)
    except httpx.HTTPError:
        out.append(Scrape(target=url, ts=ts, error="connect"))  # as a real watcher would see it
        return 1
    out.append(Scrape(target=url, ts=ts, status=200, body=r.text))
    return 0


def false_alerts(quiet: list[tuple[str, float, float]], healthy_minutes: float) -> None:
    print("## false alerts during healthy traffic\n")
    print("| traffic | hours | InferGuard incidents | InferGuard per hour | rule alerts (all rules) |")
    print("|---|---|---|---|---|")
    by_file: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for name, a, b in quiet:
        by_file[name].append((a, b))
    hours_real, ours_real, rules_real = 0.0, 0, 0
    for name, spans in by_file.items():
        scrapes = list(read_timeline(DATA / f"{name}.jsonl.gz"))
        for a, b in spans:
            part = [s for s in scrapes if a <= s.ts < b]
            if len(part) < 2:
                continue
            hours_real += (b - a) / 3600
            ours_real += len(inferguard_alerts(part))
            series = series_of(part)
            rules_real += sum(len(list(firings(r, series.get(r.metric, []), a, b))) for r in RULES)
    print(f"| real vLLM, idle + healthy phases | {hours_real:.3f} | {ours_real} | "
          f"{ours_real / hours_real if hours_real else 0:.1f} | {rules_real} |")
    if healthy_minutes <= 0:
        return
    t0 = time.monotonic()
    sim, _ = asyncio.run(simulated([("healthy", healthy_minutes)]))
    hours = (sim[-1].ts - sim[0].ts) / 3600
    ours = len(inferguard_alerts(sim))
    series = series_of(sim)
    rules = sum(len(list(firings(r, series.get(r.metric, []), sim[0].ts, sim[-1].ts))) for r in RULES)
    print(f"| simulator `healthy` (synthetic), 5 s scrapes | {hours:.2f} | {ours} | {ours / hours:.2f} | {rules} |")
    print(f"\n(simulated {healthy_minutes:g} min in {time.monotonic() - t0:.0f} s of wall time)")


def long_overload(minutes: float, lifecycles: list[tuple[str, list[dict[str, Any]], float]]) -> None:
    """The real overloads lasted ~75 s, shorter than every rule's `for:`; a long one is simulated here."""
    script = [("healthy", 5.0), ("kv_pressure", minutes), ("healthy", 5.0)]
    scrapes, starts = asyncio.run(simulated(script))
    print(f"### simulator kv_pressure for {minutes:g} min (synthetic; 5 s scrapes)\n")
    compare(scrapes, starts["kv_pressure"], scrapes[0].ts, scrapes[-1].ts)
    lifecycles.append((f"simulator kv_pressure {minutes:g} min", inferguard_incidents(scrapes),
                       starts["kv_pressure"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--healthy-minutes", type=float, default=60.0)
    ap.add_argument("--overload-minutes", type=float, default=15.0)
    ap.add_argument("--only-real", action="store_true", help="skip the simulator runs (no wall-clock wait)")
    args = ap.parse_args()
    lifecycles: list[tuple[str, list[dict[str, Any]], float]] = []
    quiet = detection_table(lifecycles)
    if not args.only_real:
        long_overload(args.overload_minutes, lifecycles)
    notification_table(lifecycles)
    false_alerts(quiet, 0.0 if args.only_real else args.healthy_minutes)


if __name__ == "__main__":
    main()
