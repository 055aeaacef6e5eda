"""Replay: `inferguard replay` of a real timeline versus prometheus_client merely parsing its pages.

    python -m benchmarks.bench_replay [--rounds 15] [--timeline tests/data/vllm_kv_overload.jsonl.gz]

The baseline is the least any Prometheus-based watcher must do with a recorded timeline: parse every
page with ``prometheus_client.parser.text_string_to_metric_families`` and touch every sample. Ours is
the whole of ``inferguard replay`` (read and decompress the timeline, parse, normalise, detect, fold
incidents, recall similar incidents, the rules diagnosis and advisories). Both run in this process,
interleaved round by round so machine load hits them alike; the ratio is of medians. Then one profiled
replay says where our time goes, by stage.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import pstats
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from prometheus_client.parser import text_string_to_metric_families

from inferguard.config import Settings
from inferguard.models import Scrape
from inferguard.runtime.oneshot import replay, replay_scrapes
from inferguard.sources.timeline import read_timeline

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
GOAL = 5.0

# Where a function's own time is counted, by the file it lives in (first match wins).
AREAS = (("parse", ("sources/exposition",)), ("normalise", ("normalise/",)), ("detect", ("detectors/",)),
         ("incidents", ("incidents/",)), ("brain: payload", ("brain/payloads",)),
         ("brain: rules", ("rlm_agent/",)), ("read timeline", ("sources/timeline", "gzip", "json/", "zlib")),
         ("flow + store", ("runtime/", "inferguard/testing", "inferguard/brain/")),
         ("pipeline", ("inferguard/pipeline",)), ("asyncio/anyio", ("asyncio/", "anyio/")))


def longest() -> Path:
    def lines(p: Path) -> int:
        with gzip.open(p, "rt", encoding="utf-8") as f:
            return sum(1 for _ in f)
    return max(sorted(DATA.glob("*.jsonl.gz")), key=lines)


def baseline(pages: list[str]) -> int:
    n = 0
    for body in pages:
        for family in text_string_to_metric_families(body):
            n += len(family.samples)
    return n


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _area(filename: str) -> str:
    return next((name for name, keys in AREAS if any(k in filename for k in keys)), "other")


def profile(path: Path, settings: Settings) -> None:
    prof = cProfile.Profile()
    prof.enable()
    replay(path, settings)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]  # pstats keeps its table here
    total = 0.0
    by_area: dict[str, float] = {}
    rows = []
    for (filename, line, func), (_, _, tottime, _, callers) in stats.items():
        total += tottime
        if filename == "~" and callers:
            # A builtin (re.findall, dict.get, ...) is charged to its callers, in proportion.
            share = sum(c[2] for c in callers.values()) or 1.0
            for (cfile, _, _), c in callers.items():
                area = _area(cfile)
                by_area[area] = by_area.get(area, 0.0) + tottime * c[2] / share
        else:
            area = _area(filename)
            by_area[area] = by_area.get(area, 0.0) + tottime
        rows.append((tottime, f"{Path(filename).parent.name}/{Path(filename).name}:{line} {func}"))
    print("\nwhere one replay's time goes (cProfile, own time, builtins charged to their callers;"
          " profiling inflates every call alike):")
    for area, t in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"  {area:16} {t * 1000:8.1f} ms  {t / total:5.1%}")
    print("  top functions:")
    for t, where in sorted(rows, reverse=True)[:12]:
        print(f"    {t * 1000:7.1f} ms  {where}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--timeline", type=Path, default=None, help="default: the longest in tests/data")
    args = ap.parse_args()
    path = args.timeline or longest()
    settings = Settings.load(env_file=None)
    scrapes: list[Scrape] = list(read_timeline(path))
    pages = [s.body for s in scrapes if s.ok and s.body is not None]
    size = sum(len(p) for p in pages)
    incidents = replay(path, settings)
    print(f"timeline {path.name}: {len(scrapes)} scrapes, {len(pages)} pages, {size / len(pages) / 1024:.1f} KB "
          f"a page; replay finds {len(incidents)} incident(s): "
          + ", ".join(f"{i['id']} {(i.get('diagnosis') or {}).get('root_cause')}" for i in incidents))
    contenders: dict[str, Callable[[], object]] = {
        "prometheus_client parse (baseline)": lambda: baseline(pages),
        "inferguard replay (file to incidents)": lambda: replay(path, settings),
        "  same, scrapes already in memory": lambda: anyio.run(replay_scrapes, scrapes, settings),
    }
    for fn in contenders.values():  # warm-up: imports, caches, first-call costs
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
    base = statistics.median(times["prometheus_client parse (baseline)"])
    print(f"\n{'contender':40} {'median':>10} {'min':>10} {'per page':>10} {'speed-up':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:40} {med * 1000:8.1f}ms {min(ts) * 1000:8.1f}ms {med / len(pages) * 1000:8.3f}ms "
              f"{base / med:8.1f}x")
    ratio = base / statistics.median(times["inferguard replay (file to incidents)"])
    print(f"\nratio (baseline median / replay median): {ratio:.1f}x; goal >= {GOAL:g}x: "
          f"{'met' if ratio >= GOAL else 'NOT met'}")
    profile(path, settings)


if __name__ == "__main__":
    main()
