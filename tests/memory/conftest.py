from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inferguard.memory import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state" / "inferguard.db", clock=lambda: 1_000_000.0)
    yield s
    await s.aclose()
