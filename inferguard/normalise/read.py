"""Fold one page into per-model snapshots: gauges, counters and histograms keyed by dialect key."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from inferguard.models import Exposition, Labels
from inferguard.normalise.dialect import Dialect, Histo, Series

Bounds = tuple[float, ...]
Hist = tuple[Bounds, tuple[float, ...]]  # (ascending upper bounds ending in +Inf, cumulative counts)
Rows = Sequence[tuple[Labels, float]]

_LE_CACHE: dict[str, float | None] = {}
_LE_CACHE_MAX = 4096


@dataclass(slots=True)
class ModelSnap:
    gauges: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    hists: dict[str, Hist] = field(default_factory=dict)


def _le(text: str) -> float | None:
    """Bucket bound as a float (``le="1"`` and ``le="1.0"`` are the same bucket), memoised."""
    try:
        return _LE_CACHE[text]
    except KeyError:
        pass
    try:
        value: float | None = float(text)
    except ValueError:
        value = None
    if value is not None and math.isnan(value):
        value = None
    if len(_LE_CACHE) >= _LE_CACHE_MAX:
        _LE_CACHE.clear()
    _LE_CACHE[text] = value
    return value


def _first(samples: dict[str, list[tuple[Labels, float]]], names: tuple[str, ...], suffix: str = "") -> Rows:
    for name in names:
        rows = samples.get(name + suffix)
        if rows:
            return rows
    return ()


def _grouper(model_of: Callable[[Labels], str], model_label: str | None,
             sum_by: tuple[str, ...]) -> Callable[[Labels], tuple[str, str | tuple[str, ...]]]:
    """(model, sum_by group) of a sample; specialised for the common shapes (called per sample)."""
    if model_label is not None and len(sum_by) == 1:
        ml, rl = model_label, sum_by[0]
        return lambda labels: (labels.get(ml, ""), labels.get(rl, ""))
    if model_label is not None and not sum_by:
        ml = model_label
        return lambda labels: (labels.get(ml, ""), "")
    return lambda labels: (model_of(labels), tuple([labels.get(n, "") for n in sum_by]))


def fold_series(rows: Rows, spec: Series, model_of: Callable[[Labels], str], model_label: str | None,
                sentinel: float | None) -> dict[str, float]:
    """model -> value: max among copies, then sum (or max) across ``sum_by`` groups."""
    cell: dict[tuple[str, str | tuple[str, ...]], float] = {}
    match = spec.match
    group = _grouper(model_of, model_label, spec.sum_by)
    isfinite = math.isfinite
    for labels, v in rows:
        if match is not None and labels.get(match[0]) != match[1]:
            continue
        if not isfinite(v) or (sentinel is not None and v >= sentinel):
            continue  # NaN/Inf/blank sentinel: unknown
        key = group(labels)
        old = cell.get(key)
        if old is None or v > old:
            cell[key] = v
    out: dict[str, float] = {}
    use_max = spec.across == "max"
    for (model, _), v in cell.items():
        old = out.get(model)
        if old is None:
            out[model] = v
        elif use_max:
            if v > old:
                out[model] = v
        else:
            out[model] = old + v
    return out


def fold_histogram(rows: Rows, spec: Histo, model_of: Callable[[Labels], str],
                   model_label: str | None, invalid: set[str] | None = None) -> dict[str, Hist]:
    """model -> cumulative buckets; copies folded by max per bucket, ``sum_by`` groups summed.

    Buckets are cumulative: a count that falls as ``le`` rises is not a histogram. Such a model's
    histogram is left out (no quantile is better than a plausible wrong one) and named in ``invalid``.
    """
    cell: dict[tuple[str, str | tuple[str, ...]], dict[float, float]] = {}
    group = _grouper(model_of, model_label, spec.sum_by)
    le_of = _LE_CACHE.get
    inf = math.inf
    last_key: tuple[str, str | tuple[str, ...]] | None = None
    buckets: dict[float, float] = {}
    for labels, v in rows:
        le = labels.get("le")
        if le is None or not v >= 0 or v == inf:
            continue
        bound = le_of(le)
        if bound is None:
            bound = _le(le)
            if bound is None:
                continue
        key = group(labels)
        if key != last_key:  # a series' buckets are adjacent on the page: one lookup per series
            got = cell.get(key)
            if got is None:
                cell[key] = got = {}
            buckets, last_key = got, key
        old = buckets.get(bound)
        if old is None or v > old:
            buckets[bound] = v
    merged: dict[str, dict[float, float]] = {}
    broken: set[str] = set()
    for (model, _), found in cell.items():
        if not _cumulative(found):
            broken.add(model)
            continue
        into = merged.get(model)
        if into is None:
            merged[model] = found
        else:
            for bound, v in found.items():
                into[bound] = into.get(bound, 0.0) + v
    out: dict[str, Hist] = {}
    if invalid is not None:
        invalid.update(broken)
    for model, found in merged.items():
        if model in broken:
            continue
        bounds = tuple(sorted(found))
        out[model] = (bounds, tuple([found[b] for b in bounds]))
    return out


def _cumulative(found: dict[float, float]) -> bool:
    last = -1.0
    for bound in sorted(found):
        v = found[bound]
        if v < last:
            return False
        last = v
    return True


def read(exp: Exposition, dialect: Dialect, invalid: set[tuple[str, str]] | None = None) -> dict[str, ModelSnap]:
    """Per-model snapshots. ``invalid`` collects (model, histogram key) pairs whose buckets are not
    cumulative (left out of the snapshot)."""
    samples = exp.samples
    model_of = dialect.model_of
    model_label = dialect.model_label
    sentinel = dialect.sentinel_at
    snaps: dict[str, ModelSnap] = {}

    def snap(model: str) -> ModelSnap:
        s = snaps.get(model)
        if s is None:
            snaps[model] = s = ModelSnap()
        return s

    for spec in dialect.gauges:
        rows = _first(samples, spec.names)
        if rows:
            for model, v in fold_series(rows, spec, model_of, model_label, sentinel).items():
                snap(model).gauges[spec.key] = v
    for spec in dialect.counters:
        rows = _first(samples, spec.names)
        if rows:
            for model, v in fold_series(rows, spec, model_of, model_label, sentinel).items():
                snap(model).counters[spec.key] = v
    for h in dialect.histograms:
        rows = _first(samples, h.names, "_bucket")
        if rows:
            broken: set[str] = set()
            for model, hist in fold_histogram(rows, h, model_of, model_label, broken).items():
                snap(model).hists[h.key] = hist
            if invalid is not None:
                invalid.update((m, h.key) for m in broken)
    return snaps
