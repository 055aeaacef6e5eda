from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from inferguard.errors import TimelineError
from inferguard.models import Scrape
from inferguard.sources.timeline import TimelineWriter, read_timeline

T = "http://127.0.0.1:8000/metrics"


@pytest.mark.parametrize("name", ["t.jsonl", "t.jsonl.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    w = TimelineWriter(path)
    w.write(Scrape(target=T, ts=1.5, status=200, body='vllm:num_requests_running{model_name="é"} 1\n'))
    w.write(Scrape(target=T, ts=4.5, error="refused"))
    w.close()
    got = list(read_timeline(path))
    assert [s.ts for s in got] == [1.5, 4.5]
    assert got[0].ok and "é" in (got[0].body or "")
    assert got[1].error == "refused" and not got[1].ok
    if name.endswith(".gz"):
        with gzip.open(path, "rt") as fh:
            assert fh.readline().startswith('{"ts": 1.5')


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"target": "x", "metrics": ""}', "'ts' must be a number"),
        ('{"ts": 1, "metrics": ""}', "'target' must be"),
        ('{"ts": 1, "target": "x"}', "needs 'metrics'"),
        ('{"ts": 1, "target": "x", "error": 5}', "'error' must be a string"),
    ],
)
def test_malformed_lines_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"ts": 0, "target": "x", "metrics": ""}\n' + line + "\n")
    with pytest.raises(TimelineError, match=message) as info:
        list(read_timeline(path))
    assert info.value.line == 2


def test_time_must_not_go_backwards_per_target(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"ts": 5, "target": "x", "metrics": ""}\n{"ts": 4, "target": "y", "metrics": ""}\n')
    assert [s.target for s in read_timeline(path)] == ["x", "y"]  # targets interleave freely
    path.write_text('{"ts": 5, "target": "x", "metrics": ""}\n{"ts": 4, "target": "x", "metrics": ""}\n')
    with pytest.raises(TimelineError, match="earlier"):
        list(read_timeline(path))


def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(TimelineError, match="cannot open"):
        list(read_timeline(tmp_path / "nope.jsonl"))


def test_truncated_gzip_is_a_typed_error_naming_where(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    w = TimelineWriter(path)
    for i in range(50):
        w.write(Scrape(target=T, ts=float(i), status=200, body="x 1\n" * 200))
    w.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TimelineError, match="truncated") as info:
        list(read_timeline(path))
    assert info.value.line > 1
