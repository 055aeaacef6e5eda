"""Recorded timelines: one JSON object per line, in time order per target; ``.gz`` is read transparently.

``{"ts": 1.0, "target": "http://...", "status": 200, "metrics": "<exposition>"}`` for a scrape and
``{"ts": 1.0, "target": "http://...", "error": "<reason>"}`` for a failed one.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from inferguard.errors import TimelineError
from inferguard.models import Scrape
from inferguard.urls import split_credentials


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")


def read_timeline(path: str | Path) -> Iterator[Scrape]:
    """Yield scrapes in file order. Raises TimelineError naming the line for anything malformed."""
    p = Path(path)
    try:
        fh = _open(p, "r")
    except OSError as exc:
        raise TimelineError(str(p), 0, f"cannot open: {exc.strerror or exc}") from exc
    last_ts: dict[str, float] = {}
    n = 0
    with fh:
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                scrape = _decode(str(p), n, line)
                # Per target: a daemon writes scrapes as they complete, so targets interleave.
                if scrape.ts < last_ts.get(scrape.target, float("-inf")):
                    raise TimelineError(str(p), n, f"ts {scrape.ts} is earlier than this target's line before")
                last_ts[scrape.target] = scrape.ts
                yield scrape
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise TimelineError(str(p), n + 1, f"unreadable (truncated or corrupt?): {exc}") from exc


def _decode(path: str, n: int, line: str) -> Scrape:
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TimelineError(path, n, f"not JSON: {exc.msg}") from exc
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
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = _open(self.path, "w")
        self.count = 0

    def write(self, scrape: Scrape) -> None:
        self._fh.write(encode(scrape) + "\n")
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        self._fh.close()
