"""A short, bounded soak: `inferguard watch` against every hostile endpoint plus a healthy simulator.

Two runs side by side, the same length and interval: the baseline watches the healthy simulator alone;
the soak watches it together with every route of tests/hostile.py (bombs, endless and slow bodies,
huge labels, ever-new models, duplicates, garbage...). Each run is one `inferguard watch` process with
`--record`, so every scrape of every target is in a timeline with its start time.

Reported per run: peak RSS (VmHWM), RSS at a quarter and at the end of the run, and the median RSS of
each quarter of the run (sampled every 0.5 s). Memory is flat when the last quarter's median is no
more than 10 % above the second quarter's (the first quarter is warm-up: windows filling, first pages);
single samples swing with whichever big page is in flight. Also cycles completed per target (lines in
the timeline) and, for the healthy target, the gaps between its scrapes against the interval
(scrape-interval jitter: p50, p95, max). Ratios soak / baseline close the report.
Loopback only; every process is stopped at the end.

    python -m benchmarks.bench_hostile_soak --duration 60 --interval 2
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile import ROUTES  # noqa: E402  # the fixture server's own list of routes
from tests.support import clean_env, free_port  # noqa: E402

# Heavy routes are asked for at a size just past the limits, so the soak measures the limits, not
# how long it takes to print 200,000 lines.
QUERIES = {"/new-models": "?n=20000", "/many-series": "?n=60000", "/slow-drip": "?every=0.5"}


def _rss_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _start(args: list[str], env: dict[str, str], cwd: Path, log: Path | None = None) -> subprocess.Popen[str]:
    # Output goes to a file (or nowhere): an undrained pipe would block the process under test.
    out = log.open("w") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _watch(urls: list[str], healthy: str, duration: float, interval: float, work: Path,
           name: str) -> dict[str, Any]:
    record = work / f"{name}.jsonl"
    env = clean_env() | {"INFERGUARD_LOG_FORMAT": "json"}
    proc = _start([sys.executable, "-m", "inferguard", "watch", *urls, "--interval", str(interval), "--no-listen",
                   "--record", str(record), "--duration", str(duration)], env, work, work / f"{name}.log")
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    peak = 0
    while proc.poll() is None and time.monotonic() - started < duration + 60:
        rss = _rss_kb(proc.pid, "VmRSS")
        hwm = _rss_kb(proc.pid, "VmHWM")
        if rss is not None:
            samples.append((time.monotonic() - started, rss))
        peak = max(peak, hwm or 0)
        time.sleep(0.5)
    stopped_by_itself = proc.poll() is not None
    _stop(proc)
    logged = (work / f"{name}.log").read_text().splitlines()
    crashes = [line for line in logged if "Traceback" in line or '"pipeline.failed"' in line]
    per_target: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in record.read_text().splitlines():
        obj = json.loads(line)
        per_target[obj["target"]].append(obj["ts"])
        errors[obj["target"]][obj.get("error", "ok")] += 1
    gaps = [b - a for a, b in zip(per_target[healthy], per_target[healthy][1:], strict=False)]
    quarter = next((kb for t, kb in samples if t >= duration / 4), None)
    return {
        "peak_rss_mb": round(peak / 1024, 1),
        "rss_quarter_mb": None if quarter is None else round(quarter / 1024, 1),
        "rss_end_mb": round(samples[-1][1] / 1024, 1) if samples else None,
        "rss_quarter_p50_mb": [_median_mb([kb for t, kb in samples if q * duration / 4 <= t < (q + 1) * duration / 4])
                               for q in range(4)],
        "cycles": {t: len(v) for t, v in sorted(per_target.items())},
        "results": {t: dict(v) for t, v in sorted(errors.items())},
        "healthy_gap_s": _dist(gaps),
        "healthy_expected_scrapes": int(duration / interval),
        "stopped_by_itself": stopped_by_itself,
        "tracebacks_or_pipeline_failures": len(crashes),
        "last_log_line": logged[-1][:300] if logged else None,
    }


def _median_mb(kbs: list[int]) -> float | None:
    return round(statistics.median(kbs) / 1024, 1) if kbs else None


def flat(quarters: list[float | None]) -> bool | None:
    """The last quarter's median RSS within 10 % of the second's (None: not enough samples)."""
    q2, q4 = quarters[1], quarters[3]
    return None if q2 is None or q4 is None else q4 <= 1.10 * q2


def _dist(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"p50": None, "p95": None, "max": None}
    s = sorted(xs)
    return {"p50": round(statistics.median(s), 3), "p95": round(s[min(len(s) - 1, int(0.95 * len(s)))], 3),
            "max": round(s[-1], 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per run (two runs)")
    ap.add_argument("--interval", type=float, default=2.0, help="watch --interval")
    ap.add_argument("--json", action="store_true", help="print the raw report as JSON")
    args = ap.parse_args(argv)
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="ig-soak-") as tmp:
        work = Path(tmp)
        hostile = subprocess.Popen([sys.executable, "-m", "tests.hostile", "--port", "0",
                                    "--duration", str(2 * args.duration + 180)], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True, env=env | {"PYTHONPATH": str(ROOT)}, cwd=ROOT)
        port = free_port()
        sim = _start([sys.executable, "-m", "inferguard", "simulate", "--port", str(port)], env, work)
        try:
            assert hostile.stdout is not None
            base = hostile.stdout.readline().strip()
            healthy = f"http://127.0.0.1:{port}/metrics"
            _wait_http(healthy)
            urls = [base + r + QUERIES.get(r, "") for r in ROUTES]
            report = {
                "config": {"duration_s": args.duration, "interval_s": args.interval, "hostile_routes": len(urls),
                           "python": sys.version.split()[0], "cpus": os.cpu_count(),
                           "load_avg_at_start": os.getloadavg()[0]},
                "baseline": _watch([healthy], healthy, args.duration, args.interval, work, "baseline"),
                "soak": _watch([*urls, healthy], healthy, args.duration, args.interval, work, "soak"),
            }
        finally:
            _stop(sim)
            _stop(hostile)
    b, s = report["baseline"], report["soak"]
    report["ratios"] = {
        "peak_rss": _ratio(s["peak_rss_mb"], b["peak_rss_mb"]),
        "healthy_cycles": _ratio(s["cycles"].get(healthy, 0), b["cycles"].get(healthy, 0)),
        "healthy_gap_p95": _ratio(s["healthy_gap_s"]["p95"], b["healthy_gap_s"]["p95"]),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report, healthy)
    return 0


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 2)


def _wait_http(url: str, timeout: float = 30.0) -> None:
    import httpx

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the simulator at {url} never answered")


def _print(report: dict[str, Any], healthy: str) -> None:
    c = report["config"]
    print(f"hostile soak: {c['duration_s']:g} s per run, --interval {c['interval_s']:g}, "
          f"{c['hostile_routes']} hostile routes, load average {c['load_avg_at_start']:.1f} at start")
    print(f"{'':28}{'baseline':>12}{'soak':>12}{'ratio':>8}")
    b, s, r = report["baseline"], report["soak"], report["ratios"]
    rows = [("peak RSS (MB)", b["peak_rss_mb"], s["peak_rss_mb"], r["peak_rss"]),
            ("RSS at 1/4 of the run (MB)", b["rss_quarter_mb"], s["rss_quarter_mb"], None),
            ("RSS at the end (MB)", b["rss_end_mb"], s["rss_end_mb"], None),
            ("healthy scrapes", b["cycles"].get(healthy), s["cycles"].get(healthy), r["healthy_cycles"]),
            ("healthy gap p50 (s)", b["healthy_gap_s"]["p50"], s["healthy_gap_s"]["p50"], None),
            ("healthy gap p95 (s)", b["healthy_gap_s"]["p95"], s["healthy_gap_s"]["p95"], r["healthy_gap_p95"]),
            ("healthy gap max (s)", b["healthy_gap_s"]["max"], s["healthy_gap_s"]["max"], None)]
    for name, x, y, q in rows:
        print(f"{name:28}{_cell(x):>12}{_cell(y):>12}{_cell(q):>8}")
    for run in ("baseline", "soak"):
        qs = report[run]["rss_quarter_p50_mb"]
        print(f"{run} RSS median per quarter (MB): {' / '.join(_cell(q) for q in qs)}; flat: {_cell(flat(qs))}")
    print(f"expected healthy scrapes per run: {b['healthy_expected_scrapes']}; tracebacks or pipeline failures: "
          f"{b['tracebacks_or_pipeline_failures']} / {s['tracebacks_or_pipeline_failures']}; "
          f"stopped by itself: {b['stopped_by_itself']} / {s['stopped_by_itself']}")
    print("cycles completed per target in the soak (results):")
    for t, n in s["cycles"].items():
        print(f"  {n:4d}  {t.split('/', 3)[-1][:40]:40} {s['results'][t]}")


def _cell(v: object) -> str:
    return "-" if v is None else str(v)


if __name__ == "__main__":
    raise SystemExit(main())
