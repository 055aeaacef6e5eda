from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from inferguard.memory import SqliteStore
from tests.memory.redis_server import PASSWORD, REDIS, RedisServer
from tests.memory.upstash_double import UpstashDouble


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state" / "inferguard.db", clock=lambda: 1_000_000.0)
    yield s
    await s.aclose()


def _redis(tmp_path: Path, password: str | None = None) -> Iterator[RedisServer]:
    if REDIS is None:
        pytest.skip("redis-server is not installed (scripts/test_deps.sh installs it)")
    server = RedisServer(tmp_path / "redis", password=password)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from _redis(tmp_path)


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server that wants a password: the URL carries a secret no output may show."""
    yield from _redis(tmp_path, password=PASSWORD)


@pytest.fixture
def upstash(redis_server: RedisServer) -> Iterator[UpstashDouble]:
    """The loopback protocol double of Upstash's REST API (Redis and Vector) over a real redis-server."""
    with UpstashDouble(redis_server.port) as double:
        yield double
