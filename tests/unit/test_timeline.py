from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from inferguard.errors import OutputError, TimelineError
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


@pytest.mark.parametrize("name", ["t.jsonl", "t.jsonl.gz"])
def test_a_kill_at_any_byte_leaves_every_complete_line_readable(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    w = TimelineWriter(path)
    ends = []
    for i in range(6):
        w.write(Scrape(target=T, ts=float(i), status=200, body="x 1\n" * (50 + i)))
        ends.append(path.stat().st_size)  # flushed per line: the file holds it now
    w.close()
    data = path.read_bytes()
    cut_path = tmp_path / ("cut" + name[1:])
    for cut in range(0, len(data) + 1, max(1, len(data) // 97)):
        cut_path.write_bytes(data[:cut])
        warnings: list[str] = []
        got = list(read_timeline(cut_path, warn=warnings.append))
        complete = sum(1 for e in ends if e <= cut)
        assert [s.ts for s in got] == [float(i) for i in range(len(got))], cut
        # A .gz line whose text is out but whose member trailer (CRC, size) is cut still reads.
        assert complete <= len(got) <= complete + name.endswith(".gz"), cut
        assert bool(warnings) == (cut not in (0, *ends)), (cut, warnings)
        assert all("truncated" in m for m in warnings)


def test_a_corrupt_gzip_is_one_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    w = TimelineWriter(path)
    for i in range(3):
        w.write(Scrape(target=T, ts=float(i), status=200, body="x 1\n" * 200))
    w.close()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte in the middle, not a cut
    path.write_bytes(bytes(data))
    with pytest.raises(TimelineError) as info:
        list(read_timeline(path))
    assert "\n" not in str(info.value) and info.value.line >= 1
    path.write_bytes(b"not gzip at all\n")
    with pytest.raises(TimelineError, match="not a gzip file"):
        list(read_timeline(path))


def test_old_single_member_gzip_files_still_read(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write('{"ts": 1, "target": "x", "metrics": "a 1\\n"}\n{"ts": 2, "target": "x", "error": "timeout"}\n')
    assert [s.ts for s in read_timeline(path)] == [1.0, 2.0]


def test_deeply_nested_json_is_one_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(TimelineError, match="nested too deeply") as info:
        list(read_timeline(path))
    assert info.value.line == 1


def test_a_bad_line_in_the_middle_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    good = '{"ts": 0, "target": "x", "metrics": ""}\n'
    path.write_text(good + '{"ts": 1, "tar\n' + good.replace("0", "2"))
    with pytest.raises(TimelineError, match="not JSON") as info:
        list(read_timeline(path))
    assert info.value.line == 2


def test_an_unwritable_path_is_one_typed_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="cannot write"):
        TimelineWriter(tmp_path / "file" / "t.jsonl")
    with pytest.raises(OutputError, match="cannot write"):
        TimelineWriter(tmp_path)
