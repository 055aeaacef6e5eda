"""Parse benchmark: prometheus_client's text parser vs ours, side by side, on real ~50 KB vLLM pages.

Run from the repo root:  python -m benchmarks.bench_parse  [--rounds N]
(or python benchmarks/bench_parse.py). Needs ../shared/fixtures/engine-metrics beside the checkout.

Each contender is timed in interleaved rounds (so load from other users of a shared machine hits all
of them alike) and reported as median and min per page:

- prometheus_client  text_string_to_metric_families, every sample consumed (the baseline);
- ours warm          one ExpositionParser reused across scrapes (the daemon's steady state), keeping
                     names starting "vllm:" except "_created" (what the normaliser needs);
- ours cold          a fresh parser per page (first scrape of a target; label caches empty);
- ours warm, keep all  everything materialised (the like-for-like comparison with the baseline);
- scan+validate only the single regex pass that checks every line (the floor of our parse);
- parse + normalise  warm parser + inferguard.normalise.TargetNormaliser (when that package imports).

The pages fed in the timed loop are a sequence derived from the real capture: counter-like samples
(`_total`, `_bucket`, `_count`, `_sum`) are scaled by (k+1) on page k, so successive pages differ the
way real scrapes do and the normaliser computes non-zero rates and bucket-delta quantiles.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client.parser import text_string_to_metric_families

from inferguard.sources import exposition
from inferguard.sources.exposition import ExpositionParser

FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "engine-metrics"
PAGES = ("vllm-v1-2026-05-inferguard-lmcache-mp.prom", "vllm-v1-2026-03-idle-cncf-kops-conformance.prom")
SEQUENCE = 64  # distinct successive pages cycled through in the timed loops
COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
QUANTILE = re.compile(r"_p[0-9]{2}(_s)?$")


def vllm_keep(name: str) -> bool:
    return name.startswith("vllm:") and not name.endswith("_created")


def successive_pages(text: str, n: int) -> list[str]:
    """``n`` pages: page k has every counter-like sample value multiplied by k+1."""
    lines = text.split("\n")
    out = []
    for k in range(n):
        page = []
        for line in lines:
            if line and not line.startswith("#"):
                head, _, value = line.rpartition(" ")
                name = head.split("{", 1)[0].rstrip()
                if name.endswith(COUNTER_SUFFIXES):
                    line = f"{head} {float(value) * (k + 1)!r}"
            page.append(line)
        out.append("\n".join(page))
    return out


def consume_prometheus_client(text: str) -> int:
    n = 0
    for fam in text_string_to_metric_families(text):
        n += len(fam.samples)
    return n


def load_normaliser() -> tuple[Any, Callable[[str], bool]] | None:
    try:
        from inferguard.normalise import KEEP, TargetNormaliser
    except Exception as exc:  # any import failure means "not available yet", reported, not fatal
        print(f"normalise not available ({type(exc).__name__}: {exc})")
        return None
    return TargetNormaliser, KEEP


def time_per_page(fn: Callable[[int], object], loops: int, start: int) -> float:
    """Seconds per call of ``fn(i)`` over ``loops`` calls (timeit-style: GC off while timing)."""
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for i in range(start, start + loops):
            fn(i)
        return (time.perf_counter() - t0) / loops
    finally:
        if gc_was:
            gc.enable()


def bench_page(name: str, rounds: int) -> list[tuple[str, list[float]]]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    pages = successive_pages(text, SEQUENCE)
    seq = len(pages)

    warm = ExpositionParser(vllm_keep)
    warm_all = ExpositionParser()
    warm.parse(pages[0])
    warm_all.parse(pages[0])
    contenders: list[tuple[str, Callable[[int], object], int]] = [
        ("prometheus_client (baseline)", lambda i: consume_prometheus_client(pages[i % seq]), 5),
        ("ours warm, keep vllm:*", lambda i: warm.parse(pages[i % seq]), 100),
        ("ours cold, keep vllm:*", lambda i: ExpositionParser(vllm_keep).parse(pages[i % seq]), 50),
        ("ours warm, keep all", lambda i: warm_all.parse(pages[i % seq]), 100),
        # Private on purpose: the regex pass alone is the validation floor we are asked to show.
        ("scan+validate only", lambda i: len(exposition._LINE_RE.findall("\n" + pages[i % seq])), 100),
    ]

    loaded = load_normaliser()
    if loaded is not None:
        normaliser_cls, keep = loaded
        parser = ExpositionParser(keep)
        norm = normaliser_cls("bench", None)
        ts = [1_000.0]

        def parse_normalise(i: int) -> Any:
            ts[0] += 5.0  # a 5 s scrape interval; time is injected, never read from the clock
            return norm.update(ts[0], parser.parse(pages[i % seq]))

        # Two successive pages first, so the timed calls compute rates and quantiles.
        parse_normalise(0)
        parse_normalise(1)
        contenders.append(("parse + normalise (warm)", parse_normalise, 100))
        last = parse_normalise(2)
        names = [k for sig in last.signals for k in sig.values]
        rates = sum(k.endswith("_per_s") for k in names)
        quantiles = sum(QUANTILE.search(k) is not None for k in names)
        print(f"  normaliser check on {name}: engine={last.engine}, {len(names)} signals, "
              f"{rates} rates, {quantiles} quantiles")

    results: dict[str, list[float]] = {label: [] for label, _, _ in contenders}
    counters = dict.fromkeys(results, 2)
    for _ in range(rounds):
        for label, fn, loops in contenders:
            # Keep the page index climbing so counters keep rising for the normaliser.
            results[label].append(time_per_page(fn, loops, counters[label]))
            counters[label] += loops
    return [(label, results[label]) for label, _, _ in contenders]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds (default 9)")
    args = ap.parse_args(argv)
    if not FIXTURES.is_dir():
        print(f"fixtures not found: {FIXTURES.resolve()} (expected ../shared beside the repo checkout)",
              file=sys.stderr)
        return 2
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
          f"load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.rounds} interleaved rounds")
    for name in PAGES:
        size = (FIXTURES / name).stat().st_size
        rows = bench_page(name, args.rounds)
        base = statistics.median(rows[0][1])
        print(f"\n{name} ({size / 1000:.1f} KB)")
        print(f"  {'contender':32s} {'median':>10s} {'min':>10s} {'speed-up (median)':>18s}")
        for label, secs in rows:
            med = statistics.median(secs)
            print(f"  {label:32s} {med * 1e3:8.3f}ms {min(secs) * 1e3:8.3f}ms {base / med:17.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
