"""Recorded timelines: one JSON object per line, in time order per target; ``.gz`` is read transparently.

``{"ts": 1.0, "target": "http://...", "status": 200, "metrics": "<exposition>"}`` for a scrape and
``{"ts": 1.0, "target": "http://...", "error": "<reason>"}`` for a failed one.

Written to survive a kill at any moment: every line is flushed as it is written, and in a ``.gz``
file every line is its own gzip member (concatenated members are one valid gzip file, RFC 1952), so
whatever was complete when the process died decodes. The reader takes every complete line and stops
at a truncated tail (the line or member being written) with a warning; anything else malformed (a
corrupt member, a bad line in the middle) is a one-line :class:`TimelineError` naming the line.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from inferguard.errors import OutputError, TimelineError
from inferguard.models import Scrape
from inferguard.urls import split_credentials

_CHUNK = 1 << 16
_log = logging.getLogger("inferguard.timeline")


def _gz_lines(fh: IO[bytes], truncated: list[bool]) -> Iterator[bytes]:
    """Lines of a (multi-member) gzip stream; sets ``truncated[0]`` when the last member is cut off."""
    d = zlib.decompressobj(31)
    fed = False  # bytes went into the current member's decompressor
    pending = b""
    offset = 0
    while True:
        raw = fh.read(_CHUNK)
        if not raw:
            break
        data = raw
        while data:
            try:
                out = d.decompress(data)
            except zlib.error as exc:
                raise _Corrupt(f"corrupt gzip data near byte {offset}: {exc}") from None
            fed = True
            pending += out
            if d.eof:
                data = d.unused_data
                d, fed = zlib.decompressobj(31), False
            else:
                data = b""
        offset += len(raw)
        *lines, pending = pending.split(b"\n")
        yield from (line + b"\n" for line in lines)
    # A member still open at the end of the file was being written when the writer died.
    truncated[0] = fed or bool(pending)
    if pending and not fed:
        yield pending  # a last line without its newline, in a complete member: still a line


class _Corrupt(Exception):
    pass


def read_timeline(path: str | Path, warn: Callable[[str], None] | None = None) -> Iterator[Scrape]:
    """Yield scrapes in file order. Raises TimelineError naming the line for anything malformed; a
    truncated last line (the writer was killed) ends the timeline with ``warn(message)``."""
    p = Path(path)
    say = warn or _log.warning
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise TimelineError(str(p), 0, f"cannot open: {exc.strerror or exc}") from None
    last_ts: dict[str, float] = {}
    truncated = [False]
    n = 0
    with fh:
        if p.suffix == ".gz":
            head = fh.read(2)
            fh.seek(0)
            if not b"\x1f\x8b".startswith(head):  # (a file cut inside the magic is a truncation)
                raise TimelineError(str(p), 1, "not a gzip file (the name ends in .gz)")
        lines = _gz_lines(fh, truncated) if p.suffix == ".gz" else iter(fh)
        try:
            for n, raw in enumerate(lines, 1):
                if not raw.strip():
                    continue
                complete = raw.endswith(b"\n")
                try:
                    scrape = _decode(str(p), n, raw.decode("utf-8"))
                except (TimelineError, UnicodeDecodeError) as exc:
                    if not complete:  # the line being written when the writer died
                        truncated[0] = True
                        break
                    if isinstance(exc, UnicodeDecodeError):
                        raise TimelineError(str(p), n, f"not UTF-8 (byte {exc.start})") from None
                    raise
                # Per target: a daemon writes scrapes as they complete, so targets interleave.
                if scrape.ts < last_ts.get(scrape.target, float("-inf")):
                    raise TimelineError(str(p), n, f"ts {scrape.ts} is earlier than this target's line before")
                last_ts[scrape.target] = scrape.ts
                yield scrape
        except _Corrupt as exc:
            raise TimelineError(str(p), n + 1, str(exc)) from None
        except OSError as exc:
            raise TimelineError(str(p), n + 1, f"unreadable: {exc.strerror or exc}") from None
    if truncated[0]:
        say(f"{p}: truncated after line {n if n else 0} (the writer was stopped mid-line); "
            "replayed every complete line before it")


def _decode(path: str, n: int, line: str) -> Scrape:
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TimelineError(path, n, f"not JSON: {exc.msg}") from None
    except RecursionError:
        raise TimelineError(path, n, "JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise TimelineError(path, n, "expected a JSON object")
    ts, target = obj.get("ts"), obj.get("target")
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        raise TimelineError(path, n, "'ts' must be a number (Unix seconds)")
    if not isinstance(target, str) or not target:
        raise TimelineError(path, n, "'target' must be a non-empty string")
    target = split_credentials(target)[0]  # a file recorded before targets were made safe
    if "error" in obj:
        if not isinstance(obj["error"], str):
            raise TimelineError(path, n, "'error' must be a string")
        return Scrape(target=target, ts=float(ts), status=obj.get("status"), error=obj["error"])
    metrics = obj.get("metrics")
    if not isinstance(metrics, str):
        raise TimelineError(path, n, "a scrape needs 'metrics' (text) or 'error' (reason)")
    status = obj.get("status", 200)
    if status != 200:
        return Scrape(target=target, ts=float(ts), status=status, error="http_status")
    return Scrape(target=target, ts=float(ts), status=200, body=metrics)


def encode(scrape: Scrape) -> str:
    obj: dict[str, Any] = {"ts": round(scrape.ts, 3), "target": scrape.target}
    if scrape.ok:
        obj["status"] = 200
        obj["metrics"] = scrape.body
    else:
        if scrape.status is not None:
            obj["status"] = scrape.status
        obj["error"] = scrape.error or "connect"
    return json.dumps(obj, ensure_ascii=False)


class TimelineWriter:
    """Writes one line per scrape, flushed at once; a ``.gz`` path gets one gzip member per line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._gz = self.path.suffix == ".gz"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[bytes] = self.path.open("wb")
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        self.count = 0

    def write(self, scrape: Scrape) -> None:
        data = (encode(scrape) + "\n").encode("utf-8")
        if self._gz:
            c = zlib.compressobj(6, zlib.DEFLATED, 31)
            data = c.compress(data) + c.flush()
        self._fh.write(data)
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        self._fh.close()
