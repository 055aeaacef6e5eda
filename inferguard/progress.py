"""Progress of `inferguard record`: a rich progress bar on a terminal, a line per minute otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RecordProgress:
    """Told of every scrape; shows scrapes, failures, elapsed and remaining time."""

    def __init__(self, duration_s: float, stream: TextIO, *, tty: bool, every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.duration_s = duration_s
        self.stream = stream
        self.every_s = every_s
        self.clock = clock
        self.started = clock()
        self.scrapes = self.failures = 0
        self.last_failure = ""
        self._next_line = every_s
        self._bar: Progress | None = None
        if tty:
            self._bar = Progress(TextColumn("recording"), BarColumn(), TextColumn("{task.fields[counts]}"),
                                 TimeElapsedColumn(), TextColumn("elapsed,"), TimeRemainingColumn(),
                                 TextColumn("left"), console=Console(file=stream), transient=False)
            self._task = self._bar.add_task("record", total=max(duration_s, 0.001), counts=self._counts())
            self._bar.start()

    def _counts(self) -> str:
        return f"{self.scrapes} scrapes, {self.failures} failed" + (
            f" (last: {self.last_failure})" if self.last_failure else "")

    def scraped(self, failure: str = "") -> None:
        self.scrapes += 1
        if failure:
            self.failures += 1
            self.last_failure = failure
        elapsed = self.clock() - self.started
        if self._bar is not None:
            self._bar.update(self._task, completed=min(elapsed, self.duration_s), counts=self._counts())
        elif elapsed >= self._next_line:
            self._next_line = (elapsed // self.every_s + 1) * self.every_s
            self.stream.write(f"record: {self._counts()}, {elapsed:.0f} s of {self.duration_s:g} s\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.duration_s, counts=self._counts())
            self._bar.stop()
