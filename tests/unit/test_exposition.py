"""Example-based tests for the exposition parser: real captures, every listed quirk, typed rejections."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferguard.errors import ExpositionError
from inferguard.models import Exposition
from inferguard.sources.exposition import ExpositionParser, parse

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "engine-metrics"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures folder absent")
FIXTURE_FILES = sorted(p.name for p in FIXTURES.glob("*.prom")) if FIXTURES.is_dir() else []
VLLM_PAGE = "vllm-v1-2026-05-inferguard-lmcache-mp.prom"


def _read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _flat(exp: Exposition) -> Iterator[tuple[str, tuple[tuple[str, str], ...], float | str]]:
    for name, pairs in exp.samples.items():
        for labels, value in pairs:
            yield name, tuple(sorted(labels.items())), "nan" if math.isnan(value) else value


def _vllm_keep(name: str) -> bool:
    return name.startswith("vllm:") and not name.endswith("_created")


# --- real captures -------------------------------------------------------------------------------


@needs_fixtures
def test_all_thirteen_fixtures_are_present() -> None:
    assert len(FIXTURE_FILES) == 13


@needs_fixtures
@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_every_fixture_parses_like_prometheus_client(name: str) -> None:
    text = _read(name)
    exp = parse(text)
    # prometheus_client chokes on the doc-truncation "..." lines; give it the page without them.
    oracle_text = "\n".join(line for line in text.split("\n") if line != "...")
    counters = set()
    theirs = set()
    for fam in text_string_to_metric_families(oracle_text):
        if fam.type == "counter":
            counters.add(fam.name)
        for s in fam.samples:
            v = float(s.value)
            theirs.add((s.name, tuple(sorted(s.labels.items())), "nan" if math.isnan(v) else v))
    ours = set(_flat(exp))
    # prometheus_client renames counter samples that lack `_total` (DCGM does that) to `name_total`;
    # we keep the name as printed, which is what the normaliser matches on.
    renamed = {(n, lab, v) for n, lab, v in theirs if n.endswith("_total") and n[: -len("_total")] in counters
               and (n[: -len("_total")], lab, v) in ours}
    expected = (theirs - renamed) | {(n[: -len("_total")], lab, v) for n, lab, v in renamed}
    assert ours == expected
    assert exp.sample_lines == sum(len(v) for v in exp.samples.values())


@needs_fixtures
def test_vllm_page_with_keep_materialises_only_kept_names() -> None:
    text = _read(VLLM_PAGE)
    full = parse(text)
    kept = parse(text, keep=_vllm_keep)
    assert kept.sample_lines == full.sample_lines == 415
    assert set(kept.samples) == {n for n in full.samples if _vllm_keep(n)}
    assert kept.samples["vllm:prefix_cache_hits_total"] == full.samples["vllm:prefix_cache_hits_total"]
    assert kept.samples["vllm:prefix_cache_hits_total"][0][1] == 19824.0
    assert "vllm:prompt_tokens_created" not in kept.samples
    assert kept.types == full.types  # TYPE lines are recorded whatever keep says
    assert kept.types["vllm:prompt_tokens_created"] == "gauge"


@needs_fixtures
def test_created_families_are_ordinary_samples() -> None:
    exp = parse(_read(VLLM_PAGE))
    (labels, value), *_ = exp.samples["vllm:estimated_flops_per_gpu_created"]
    assert labels == {"engine": "0", "model_name": "Qwen/Qwen3-8B"}
    assert value == pytest.approx(1.778194974408791e09)


@needs_fixtures
def test_pid_labels_are_kept_as_labels() -> None:
    exp = parse(_read("sglang-0.5.x-dynamo-worker-metrics-examples.prom"))
    pids = [lab for name, pairs in exp.samples.items() if "retracted" in name for lab, _ in pairs]
    assert pids and all("pid" in lab for lab in pids)


@needs_fixtures
def test_type_lines_without_samples_are_recorded_but_give_no_samples() -> None:
    exp = parse(_read("vllm-v1-2026-03-idle-cncf-kops-conformance.prom"))
    assert exp.types["http_request_duration_seconds"] == "histogram"
    assert not any(n.startswith("http_request_duration_seconds_") for n in exp.samples)


@needs_fixtures
def test_page_without_type_lines_parses_untyped() -> None:
    exp = parse(_read("dcgm-exporter-drv590-T4-loaded-cncf-ericsson.prom"))
    assert exp.types == {}
    assert exp.sample_lines == 20
    assert exp.samples["DCGM_FI_DEV_POWER_USAGE"][0][1] == 68.244
    assert exp.samples["DCGM_FI_DEV_POWER_USAGE"][0][0]["modelName"] == "Tesla T4"


@needs_fixtures
def test_dcgm_readme_sentinel_comma_space_labels_and_ellipsis() -> None:
    exp = parse(_read("dcgm-exporter-4.5.3-readme-doc-truncated.prom"))
    (labels, value), = exp.samples["DCGM_FI_DEV_MEMORY_TEMP"]
    assert value == float(9223372036854775794)  # sentinel parsed as a float; the normaliser drops it
    assert labels == {"gpu": "0", "UUID": "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"}
    assert exp.sample_lines == 3


@needs_fixtures
def test_truncated_histogram_without_inf_bucket() -> None:
    exp = parse(_read("vllm-v0.6-0.8-docs-production-metrics-example-truncated.prom"))
    les = [lab["le"] for lab, _ in exp.samples["vllm:iteration_tokens_total_bucket"]]
    assert les[-1] == "512.0" and "+Inf" not in les


@needs_fixtures
def test_non_ascii_help_via_bytes() -> None:
    name = "lmcache-mp-2026-05-inferguard-packet-a.prom"
    body = (FIXTURES / name).read_bytes()
    assert "→".encode() in body
    assert set(_flat(ExpositionParser().parse_bytes(body))) == set(_flat(parse(_read(name))))


@needs_fixtures
def test_long_float_bounds_are_kept_as_text() -> None:
    pages = [parse(_read(n)) for n in FIXTURE_FILES]
    les = {lab["le"] for exp in pages for pairs in exp.samples.values() for lab, _ in pairs if "le" in lab}
    assert "0.0" in les or "0" in les
    assert any(len(le) > 15 for le in les)


@needs_fixtures
def test_garbage_line_inside_a_real_page_is_reported_with_its_line_number() -> None:
    lines = _read(VLLM_PAGE).split("\n")
    lines.insert(300, '<div class="error">oops</div>')
    with pytest.raises(ExpositionError) as info:
        ExpositionParser(_vllm_keep).parse("\n".join(lines))
    assert info.value.reason == "not_metrics" and info.value.line == 301
    assert "HTML" in info.value.detail


@needs_fixtures
def test_bad_label_set_on_a_skipped_name_is_still_rejected() -> None:
    text = _read(VLLM_PAGE) + 'python_info{a="1",a="2"} 1\n'
    with pytest.raises(ExpositionError) as info:
        ExpositionParser(_vllm_keep).parse(text)
    assert "duplicate label 'a'" in info.value.detail
    assert info.value.line == text.count("\n")


# --- format details --------------------------------------------------------------------------------


def test_values_ints_exponents_nan_inf_and_timestamps() -> None:
    text = "\n".join([
        "a 0", "b 1256", "c 35.686000", "d 8.128902e+06", "e NaN", "f +Inf", "g -Inf", "h -1.0",
        "i 1E-3", "j .5", "k 7 1700000000000", "l{x=\"y\"} 2 -5", "m Inf", "",
    ])
    s = parse(text).samples
    got = {n: v[0][1] for n, v in s.items()}
    assert got == {"a": 0.0, "b": 1256.0, "c": 35.686, "d": 8128902.0, "e": got["e"], "f": math.inf,
                   "g": -math.inf, "h": -1.0, "i": 0.001, "j": 0.5, "k": 7.0, "l": 2.0, "m": math.inf}
    assert math.isnan(got["e"])
    assert all(type(v) is float for v in got.values())


def test_escaped_and_empty_label_values() -> None:
    text = 'a{p="C:\\\\dir",q="say \\"hi\\"",r="two\\nlines",cache_salt="",u="L0→L1"} 1\n'
    (labels, _), = parse(text).samples["a"]
    assert labels == {"p": "C:\\dir", "q": 'say "hi"', "r": "two\nlines", "cache_salt": "", "u": "L0→L1"}


def test_label_spacing_trailing_comma_tabs_and_crlf() -> None:
    text = 'a{ x = "1" ,\ty="2", } 3 \r\nb\t4\r\n# HELP b with trailing space \r\n'
    s = parse(text).samples
    assert s == {"a": [({"x": "1", "y": "2"}, 3.0)], "b": [({}, 4.0)]}


def test_brace_and_hash_inside_label_value() -> None:
    s = parse('a{path="/x}{y",frag="#top"} 1\n').samples
    assert s == {"a": [({"path": "/x}{y", "frag": "#top"}, 1.0)]}


def test_types_help_comments_and_comment_only_page() -> None:
    text = "# HELP a gauges never set\n# TYPE a gauge\n# TYPE b_total counter\n# just a comment\n"
    exp = parse(text)
    assert exp.types == {"a": "gauge", "b_total": "counter"}
    assert exp.samples == {} and exp.sample_lines == 0
    assert parse("# a lone comment").sample_lines == 0


def test_samples_keep_page_order_per_name() -> None:
    text = 'x{i="1"} 1\ny 9\nx{i="2"} 2\nx{i="3"} 3\n'
    assert [lab["i"] for lab, _ in parse(text).samples["x"]] == ["1", "2", "3"]


def test_ellipsis_only_as_a_whole_line() -> None:
    assert parse("a 1\n...\nb 2\n").sample_lines == 2
    assert parse("a 1\n... \n").sample_lines == 1
    for bad in ["a 1\n....\n", "a 1\n... more\n", "a 1\n..\n"]:
        with pytest.raises(ExpositionError) as info:
            parse(bad)
        assert info.value.line == 2


# --- keep and caches -------------------------------------------------------------------------------


def test_keep_is_memoised_per_name_across_pages() -> None:
    calls: list[str] = []

    def keep(name: str) -> bool:
        calls.append(name)
        return name.startswith("want")

    parser = ExpositionParser(keep)
    page = 'want_a{m="1"} 1\nwant_a{m="2"} 2\nskip_b 3\nwant_c 4\n'
    first = parser.parse(page)
    second = parser.parse(page)
    assert sorted(calls) == ["skip_b", "want_a", "want_c"]
    assert first.samples == second.samples
    assert set(first.samples) == {"want_a", "want_c"} and first.sample_lines == 4


def test_warm_parser_shares_label_dicts_between_scrapes() -> None:
    parser = ExpositionParser()
    one = parser.parse('a{m="x"} 1\n')
    two = parser.parse('a{m="x"} 2\n')
    assert one.samples["a"][0][0] is two.samples["a"][0][0]
    assert two.samples["a"][0][1] == 2.0


def test_label_cache_is_bounded() -> None:
    parser = ExpositionParser(max_label_cache=10)
    page = "".join(f'a{{i="{i}"}} {i}\n' for i in range(95))
    exp = parser.parse(page)
    assert [lab["i"] for lab, _ in exp.samples["a"]] == [str(i) for i in range(95)]
    assert len(parser._label_cache) <= 10  # internal, but the bound is the point of this test
    assert parser.parse(page).samples == exp.samples


def test_max_label_cache_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ExpositionParser(max_label_cache=0)


# --- rejections ------------------------------------------------------------------------------------

REJECTED = [
    pytest.param("<!DOCTYPE html>\n<html><body>Login</body></html>\n", 1, "HTML", id="html"),
    pytest.param('{"status": "ok", "metrics": []}', 1, "JSON", id="json"),
    pytest.param('[{"a": 1}]', 1, "JSON", id="json-list"),
    pytest.param('vllm:x 1\nvllm:x{model="a', 2, "unterminated", id="truncated-labels"),
    pytest.param('vllm:x 1\nvllm:num_requests_running', 2, "no value", id="name-without-value"),
    pytest.param("vllm:x 1\nvllm:num_requests_running ", 2, "no value", id="name-space-no-value"),
    pytest.param("1abc 1\n", 1, "invalid metric name", id="digit-first"),
    pytest.param("foo-bar 1\n", 1, "invalid metric name", id="dash-in-name"),
    pytest.param("foo.bar 1\n", 1, "invalid metric name", id="dot-in-name"),
    pytest.param("a 1\nb abc\n", 2, "value", id="bad-value"),
    pytest.param("a 1_000\n", 1, "value", id="underscore-value"),
    pytest.param("a 0x10\n", 1, "value", id="hex-value"),
    pytest.param("a 1 2 3\n", 1, "value", id="two-timestamps"),
    pytest.param("a 1 1.5\n", 1, "value", id="float-timestamp"),
    pytest.param('a{b="\\q"} 1\n', 1, "label set", id="bad-escape"),
    pytest.param('a{b=c} 1\n', 1, "label set", id="unquoted-label"),
    pytest.param('a{1b="c"} 1\n', 1, "label set", id="bad-label-name"),
    pytest.param('a{b="c",,} 1\n', 1, "label set", id="double-comma"),
    pytest.param('a{b="c" d="e"} 1\n', 1, "label set", id="missing-comma"),
    pytest.param('a{b="c",b="d"} 1\n', 1, "duplicate label", id="duplicate-label"),
    pytest.param("# TYPE a bogus\na 1\n", 1, "TYPE", id="bad-type"),
    pytest.param("# TYPE 9a gauge\n", 1, "TYPE", id="bad-type-name"),
    pytest.param("# TYPE a gauge extra\n", 1, "TYPE", id="type-trailing-junk"),
    pytest.param("a 1\n  # indented comment\n", 2, "", id="indented-comment"),
    pytest.param("", 1, "empty", id="empty"),
    pytest.param("\n\n  \n", 1, "empty", id="blank-lines"),
    pytest.param("...\n", 1, "empty", id="only-ellipsis"),
]


@pytest.mark.parametrize(("text", "line", "words"), REJECTED)
def test_garbage_is_rejected_with_reason_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ExpositionError) as info:
        ExpositionParser().parse(text)
    err = info.value
    assert err.reason == "not_metrics"
    assert err.line == line
    assert words in err.detail
    assert str(err).startswith("not_metrics at line")


def test_invalid_utf8_is_bad_encoding() -> None:
    with pytest.raises(ExpositionError) as info:
        ExpositionParser().parse_bytes(b"a 1\n# HELP a caf\xe9\n")
    assert info.value.reason == "bad_encoding"
    assert "byte 16" in info.value.detail
    assert info.value.line == 2


def test_bytes_with_bom_and_utf8_labels() -> None:
    exp = ExpositionParser().parse_bytes('\ufeffa{m="Ü"} 1\n'.encode())
    assert exp.samples == {"a": [({"m": "Ü"}, 1.0)]}


def test_non_str_input_is_a_typed_error() -> None:
    with pytest.raises(ExpositionError):
        ExpositionParser().parse(b"a 1\n")  # type: ignore[arg-type]


def test_error_detail_truncates_long_lines() -> None:
    with pytest.raises(ExpositionError) as info:
        parse("<html>" + "x" * 10_000)
    assert len(info.value.detail) < 200


# --- reserved label names ("__" prefix) ------------------------------------------------------------
# The rule (module docstring): the sample's own name is the metric name, always; a label named
# ``__name__`` or anything else starting with ``__`` is an ordinary label, kept as written, part of
# the series' identity, counted and bounded like every other label.


def test_a_name_label_never_renames_the_sample() -> None:
    exp = parse('foo{__name__="bar",a="1"} 3\n# TYPE bar gauge\nbar 4\n')
    assert exp.samples["foo"] == [({"__name__": "bar", "a": "1"}, 3.0)]
    assert exp.samples["bar"] == [({}, 4.0)] and exp.dropped == {}


def test_keep_decides_by_the_sample_name_not_the_name_label() -> None:
    exp = ExpositionParser(keep=lambda n: n == "bar").parse('foo{__name__="bar"} 3\nbar{__name__="foo"} 4\n')
    assert list(exp.samples) == ["bar"] and exp.samples["bar"] == [({"__name__": "foo"}, 4.0)]


def test_reserved_labels_are_kept_and_are_part_of_the_series_identity() -> None:
    exp = parse('foo{__meta_x="1"} 1\nfoo{__meta_x="2"} 2\nfoo 3\nfoo{__meta_x="1"} 9\n')
    assert [(lab, v) for lab, v in exp.samples["foo"]] == [({"__meta_x": "1"}, 1.0), ({"__meta_x": "2"}, 2.0),
                                                             ({}, 3.0)]
    assert exp.dropped == {"duplicate_series": 1}  # the second __meta_x="1" is the same series


def test_reserved_labels_follow_the_duplicate_and_length_rules() -> None:
    with pytest.raises(ExpositionError, match="duplicate label '__name__'"):
        parse('foo{__name__="a",__name__="b"} 1\n')
    exp = ExpositionParser(max_label_length=16).parse(f'foo{{__x="{"v" * 17}"}} 1\nfoo{{__x="ok"}} 2\n')
    assert exp.samples["foo"] == [({"__x": "ok"}, 2.0)] and exp.dropped == {"long_labels": 1}


def test_a_name_label_on_an_engine_page_changes_no_signal() -> None:
    from inferguard.normalise import KEEP, TargetNormaliser

    page = ('vllm:kv_cache_usage_perc{model_name="m",__name__="vllm:num_requests_waiting"} 0.5\n'
            'vllm:num_requests_waiting{model_name="m"} 2\nvllm:num_requests_running{model_name="m"} 1\n')
    signals = TargetNormaliser("http://t/metrics").update(0.0, ExpositionParser(keep=KEEP).parse(page)).signals
    assert [(s.model, s.values.get("kv_usage"), s.values.get("requests_waiting")) for s in signals] == [("m", 0.5, 2.0)]
