"""The shape of one engine dialect: which sample names it reads and how ranks fold together.

A dialect is data (name tables built once at import) plus one small ``derive`` function for the
arithmetic that is specific to it. ``update()`` walks these tables; nothing is looked up by regex.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from inferguard.models import Labels

# derive(gauges, counters_now, counter_deltas_or_None, elapsed_s) -> canonical values
Derive = Callable[[Mapping[str, float], Mapping[str, float], Mapping[str, float] | None, float], dict[str, float]]


@dataclass(frozen=True, slots=True)
class Series:
    """One quantity read from the page under ``key`` (dialect-internal).

    ``names``: candidate sample names, newest first. The first one present on the page is used and
    the others ignored: during a rename both are printed and summing them would double count.
    ``match``: keep only samples whose label ``match[0]`` equals ``match[1]`` (e.g. a finish reason).
    ``sum_by``: labels whose values are separate queues/pools (vLLM ``engine``, SGLang ``dp_rank``):
    values add across them. Samples that differ only in other labels (``tp_rank``, ``pid``...) are
    copies of one state, so the max is taken among them. ``across="max"`` takes the max everywhere
    (KV usage: one pool per rank, and "how full is the fullest" is what pressure means).
    """

    key: str
    names: tuple[str, ...]
    match: tuple[str, str] | None = None
    sum_by: tuple[str, ...] = ()
    across: Literal["sum", "max"] = "sum"


@dataclass(frozen=True, slots=True)
class Histo:
    """A histogram read as cumulative bucket counts; ``quantiles`` maps q -> canonical name."""

    key: str
    names: tuple[str, ...]  # family names; the ``_bucket`` samples are read
    quantiles: tuple[tuple[float, str], ...]
    sum_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dialect:
    engine: str
    model_of: Callable[[Labels], str]
    gauges: tuple[Series, ...]
    counters: tuple[Series, ...]
    histograms: tuple[Histo, ...]
    derive: Derive
    core: tuple[str, ...]
    # counter key -> counter key of its family: a labelled child that appears between two scrapes
    # while its family already existed started at 0 (prometheus_client creates children lazily).
    lazy_children: Mapping[str, str] = field(default_factory=dict)
    # Values at or above this are "not supported"/blank sentinels, i.e. unknown (DCGM).
    sentinel_at: float | None = None
    # When the model is one label's value, naming it lets the per-sample loop skip a function call.
    model_label: str | None = None

    def sample_names(self) -> frozenset[str]:
        names: set[str] = set()
        for s in (*self.gauges, *self.counters):
            names.update(s.names)
        for h in self.histograms:
            names.update(n + "_bucket" for n in h.names)
        return frozenset(names)


def by_model_name(labels: Labels) -> str:
    return labels.get("model_name", "")


def rate(d: Mapping[str, float], key: str, elapsed: float) -> float | None:
    v = d.get(key)
    return None if v is None else v / elapsed


def ratio(d: Mapping[str, float], num: str, den: str) -> float | None:
    """num/den over the window; unknown when nothing happened (den == 0), never 0."""
    n, m = d.get(num), d.get(den)
    if n is None or m is None or m <= 0:
        return None
    return n / m


def put(out: dict[str, float], name: str, value: float | None) -> None:
    if value is not None:
        out[name] = value
