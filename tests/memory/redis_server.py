"""A real redis-server on a free loopback port in a temporary folder (AOF on, so a kill -9 loses nothing
that was acknowledged). Tests skip cleanly when the binary is missing (scripts/test_deps.sh installs it)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from inferguard.config import MemorySettings
from inferguard.memory.build import open_memory
from tests.support import free_port

REDIS = shutil.which("redis-server")
# The password of the conftest's `locked_redis` server: a secret no command's output may show.
PASSWORD = "s3cret-redis-pw"


class RedisServer:
    def __init__(self, folder: Path, password: str | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
                "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--logfile", "redis.log"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


async def replay_spool(state_dir: Path, url: str) -> None:
    """What the next start over ``state_dir`` (the daemon's, or any memory command's) does with Redis at
    ``url`` back: it replays the embedded store's spool; fails unless all of it arrives within 30 s."""
    m = open_memory(MemorySettings(state_dir=state_dir, redis_url=url))  # type: ignore[arg-type]
    try:
        await m.start()
        assert await m.settle(30), m.degraded
    finally:
        await m.aclose()
