"""`inferguard watch` as an operator runs it: a subprocess whose stdout (not a TTY) is JSON lines.

Each stdout line is parsed as it arrives and stamped with the wall time it was read, so tests can relate
incident events to the phase boundaries of the load they drove.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.e2e.harness import free_port

Event = dict[str, Any]


class Watch:
    """``python -m inferguard watch URL --interval S --listen 127.0.0.1:PORT --record FILE``."""

    def __init__(self, url: str, *, interval: float, record: Path, workdir: Path) -> None:
        self.url = url
        self.interval = interval
        self.record = record
        self.port = free_port()
        self.workdir = workdir
        self.events: list[Event] = []  # every stdout object, with "_seen" = wall time it was read
        self.bad_lines: list[str] = []
        self.returncode: int | None = None
        self.stderr = ""
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        # The operator's environment must not leak in: settings come from the command line only.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERGUARD_", "GMI_"))}
        cmd = [sys.executable, "-m", "inferguard", "watch", self.url, "--interval", str(self.interval),
               "--listen", f"127.0.0.1:{self.port}", "--record", str(self.record)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                      cwd=self.workdir, start_new_session=True)
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                self.bad_lines.append(line)
                continue
            if isinstance(obj, dict):
                obj["_seen"] = time.time()
                with self._lock:
                    self.events.append(obj)
            else:
                self.bad_lines.append(line)

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def incident_events(self) -> list[Event]:
        return [e for e in self.snapshot() if str(e.get("event", "")).startswith("incident.")]

    def wait_for(self, pred: Callable[[list[Event]], bool], timeout: float, what: str) -> list[Event]:
        """Block until pred(events) holds; fail with what we did see (and the daemon's stderr) if not."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            evs = self.snapshot()
            if pred(evs):
                return evs
            if self._proc is not None and self._proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{what}: not seen within {timeout:.0f}s\n{self.describe()}")

    def describe(self) -> str:
        """A compact story of what the daemon printed, for assertion messages."""
        rows = []
        for e in self.snapshot():
            kind = e.get("event")
            if str(kind).startswith("incident."):
                inc = e.get("incident", {})
                rows.append(f"  {e['_seen']:.1f} {kind} {inc.get('id')} codes={inc.get('codes')} "
                            f"root_cause={(inc.get('diagnosis') or {}).get('root_cause')}")
            elif kind not in ("cycle",):
                rows.append(f"  {e['_seen']:.1f} {kind}")
        alive = self._proc is not None and self._proc.poll() is None
        err = self.stderr or ("(running)" if alive else "")
        return "\n".join([f"daemon events ({len(self.events)} lines, {len(self.bad_lines)} non-JSON):", *rows,
                          f"daemon stderr tail:\n{err[-3000:]}"])

    def stop(self) -> int:
        """SIGTERM and wait: the daemon must stop cleanly by itself (exit 0) within 20 s."""
        if self._proc is None:
            return -1
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
            self.returncode = None
        if self._reader is not None:
            self._reader.join(timeout=10)
        assert self._proc.stderr is not None and self._proc.stdout is not None
        self.stderr = self._proc.stderr.read()
        self._proc.stderr.close()
        self._proc.stdout.close()
        return -1 if self.returncode is None else self.returncode

    def __enter__(self) -> Watch:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
