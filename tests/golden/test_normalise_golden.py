"""Golden normaliser cases: one folder per case under tests/golden/normalise/, walked by one test.

``case.json``: ``fixture`` (a file in shared/fixtures/engine-metrics), ``second`` (a second fixture
scraped ``elapsed_s`` later, or null), optional ``synthetic`` edits applied to the *second* page's
text (SYNTHETIC deltas of a real page: the captures are single snapshots, so a window needs a made-up
later page), optional ``engine_hint``, and a ``checked`` note with the numbers verified by hand.
``expected.json``: what the *last* update returns.

Synthetic edits, applied line by line to Prometheus text (selectors: ``name`` or ``name{k="v",...}``,
matching every sample whose labels include the given ones):
  ``add``: {selector: delta}, ``set``: {selector: value},
  ``observe``: [[histogram family selector, value, n], ...] -> n observations of ``value``
  (every ``_bucket`` with le >= value, ``_count`` and ``_sum`` move), ``append``: [raw lines].
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from inferguard.normalise import KEEP, TargetNormaliser
from inferguard.sources.exposition import parse

HERE = Path(__file__).resolve().parent / "normalise"
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "engine-metrics"
CASES = sorted(p.name for p in HERE.iterdir() if (p / "case.json").is_file())

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?([ \t]+)(\S+)(.*)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"')

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"no shared fixtures at {FIXTURES}")


def _selector(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition("{")
    return name, dict(_LABEL.findall(rest))


def _labels(block: str | None) -> dict[str, str]:
    return dict(_LABEL.findall(block or ""))


def _matches(want: dict[str, str], have: dict[str, str]) -> bool:
    return all(have.get(k) == v for k, v in want.items())


def synthesise(text: str, edits: dict[str, Any]) -> str:
    """Apply SYNTHETIC edits to a real page (see module docstring)."""
    add = [(_selector(s), float(d)) for s, d in edits.get("add", {}).items()]
    put = [(_selector(s), float(v)) for s, v in edits.get("set", {}).items()]
    observe = [(_selector(s), float(v), float(n)) for s, v, n in edits.get("observe", [])]
    used: set[int] = set()
    out = []
    for line in text.split("\n"):
        m = _SAMPLE.match(line)
        if m is None:
            out.append(line)
            continue
        name, block, gap, value, tail = m.groups()
        labels = _labels(block)
        v = float(value)
        for i, ((sel_name, sel_labels), delta) in enumerate(add):
            if name == sel_name and _matches(sel_labels, labels):
                v += delta
                used.add(i)
        for i, ((sel_name, sel_labels), new) in enumerate(put):
            if name == sel_name and _matches(sel_labels, labels):
                v = new
                used.add(100 + i)
        for i, ((family, sel_labels), x, n) in enumerate(observe):
            if not _matches(sel_labels, labels):
                continue
            if (name == family + "_bucket" and x <= float(labels["le"])) or name == family + "_count":
                v += n
            elif name == family + "_sum":
                v += x * n
            else:
                continue
            used.add(200 + i)
        out.append(f"{name}{block or ''}{gap}{v!r}{tail}" if v != float(value) else line)
    wanted = {i for i in range(len(add))} | {100 + i for i in range(len(put))} | {200 + i for i in range(len(observe))}
    assert wanted <= used, f"synthetic edit matched no sample: {sorted(wanted - used)}"
    appended = list(edits.get("append", []))
    if appended:
        while out and out[-1] == "":
            out.pop()
        out += [*appended, ""]
    return "\n".join(out)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@needs_fixtures
def test_every_fixture_has_a_case() -> None:
    used: set[str] = set()
    for case in CASES:
        spec = json.loads((HERE / case / "case.json").read_text())
        used.add(spec["fixture"])
        if spec.get("second"):
            used.add(spec["second"])
    assert {p.name for p in FIXTURES.glob("*.prom")} <= used


@needs_fixtures
@pytest.mark.parametrize("case", CASES)
def test_normalise_golden(case: str) -> None:
    spec = json.loads((HERE / case / "case.json").read_text())
    expected = json.loads((HERE / case / "expected.json").read_text())
    assert spec.get("checked"), "every case says which numbers were checked by hand"
    n = TargetNormaliser(f"golden/{case}", engine_hint=spec.get("engine_hint"))
    t0 = 1_700_000_000.0
    result = n.update(t0, parse((FIXTURES / spec["fixture"]).read_text(encoding="utf-8"), KEEP))
    if spec.get("second"):
        text = (FIXTURES / spec["second"]).read_text(encoding="utf-8")
        if spec.get("synthetic"):
            text = synthesise(text, spec["synthetic"])
        result = n.update(t0 + float(spec["elapsed_s"]), parse(text, KEEP))
    else:
        assert not spec.get("synthetic"), "synthetic edits apply to the second page"

    assert result.engine == expected["engine"]
    assert result.restarted == expected["restarted"]
    got: list[dict[str, Any]] = [
        {"model": s.model, "restarted": s.restarted, "missing": list(s.missing), "values": dict(s.values)}
        for s in result.signals
    ]
    assert [g["model"] for g in got] == [e["model"] for e in expected["signals"]]
    for g, e in zip(got, expected["signals"], strict=True):
        assert g["restarted"] == e["restarted"], g["model"]
        assert g["missing"] == e["missing"], g["model"]
        assert sorted(g["values"]) == sorted(e["values"]), g["model"]
        bad = {k: (g["values"][k], v) for k, v in e["values"].items() if not _close(g["values"][k], v)}
        assert not bad, f"{g['model']}: got/expected {bad}"
    for s in result.signals:
        assert s.target == f"golden/{case}" and s.engine == result.engine


def test_synthesise_edits_real_lines_only() -> None:
    page = ('a_total{x="1"} 1.0\n# HELP a_total a_total{x="1"} 5\n'
            'h_bucket{le="0.5"} 2\nh_bucket{le="+Inf"} 3\nh_count 3\nh_sum 1.0\n')
    out = synthesise(page, {"add": {'a_total{x="1"}': 2}, "observe": [["h", 1.0, 4]], "append": ["z 1"]})
    assert out.split("\n") == ['a_total{x="1"} 3.0', '# HELP a_total a_total{x="1"} 5', 'h_bucket{le="0.5"} 2',
                               'h_bucket{le="+Inf"} 7.0', "h_count 7.0", "h_sum 5.0", "z 1", ""]
    with pytest.raises(AssertionError, match="matched no sample"):
        synthesise(page, {"add": {'a_total{x="2"}': 1}})
