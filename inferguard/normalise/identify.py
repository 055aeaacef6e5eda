"""Which engine printed a page, from the metric names present (never HELP text, never a guess)."""

from __future__ import annotations

from inferguard.models import Exposition
from inferguard.normalise import dcgm, sglang, vllm


def _families(sample: str) -> tuple[str, ...]:
    # A page can print TYPE lines for families with no sample yet (multiprocess mode prints never-set
    # gauges; a capture can be cut off), so a marker counts when its family is typed too.
    for suffix in ("_total", "_bucket"):
        if sample.endswith(suffix):
            return (sample, sample[: -len(suffix)])
    return (sample,)


def _markers(names: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((n, _families(n)) for n in names)


_V0 = _markers(vllm.V0_MARKERS)
_V1 = _markers(vllm.V1_MARKERS)
_SGLANG = _markers(sglang.MARKERS)
_DCGM = _markers(tuple(n for s in dcgm.DCGM.gauges + dcgm.DCGM.counters for n in s.names))


def _any(exp: Exposition, markers: tuple[tuple[str, tuple[str, ...]], ...]) -> bool:
    samples, types = exp.samples, exp.types
    for sample, families in markers:
        if sample in samples:
            return True
        for family in families:
            if family in types:
                return True
    return False


def _v1_engine_label(exp: Exposition) -> bool:
    # V1 labels every series with the data-parallel ``engine`` index; V0 never did.
    rows = exp.samples.get("vllm:num_requests_running")
    return rows is not None and len(rows) > 0 and "engine" in rows[0][0]


def _has_prefix(exp: Exposition, prefix: str) -> bool:
    return any(n.startswith(prefix) for n in exp.samples) or any(n.startswith(prefix) for n in exp.types)


def identify(exp: Exposition) -> str:
    """``vllm-v1`` | ``vllm-v0`` | ``sglang`` | ``dcgm`` | ``unknown``.

    Contradictory markers (V0 and V1, or vLLM and SGLang on one page) give ``unknown``; so does a
    vLLM page whose names exist in both eras (the era cannot be told; pass an engine hint).
    """
    v0 = _any(exp, _V0)
    v1 = _any(exp, _V1) or _v1_engine_label(exp)
    sg = _any(exp, _SGLANG)
    if sg:
        return "unknown" if (v0 or v1) else "sglang"
    if v0 and v1:
        return "unknown"
    if v0:
        return "vllm-v0"
    if v1:
        return "vllm-v1"
    has_vllm = _has_prefix(exp, "vllm:")
    if has_vllm:
        return "unknown"  # vLLM, era unknown: only names common to V0 and V1 (or none we read)
    if _has_prefix(exp, "sglang:"):
        return "sglang"  # SGLang names, none of the ones we read: reported with everything missing
    if _any(exp, _DCGM) or _has_prefix(exp, dcgm.PREFIX):
        return "dcgm"
    return "unknown"
