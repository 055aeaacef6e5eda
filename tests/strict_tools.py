"""A pytest plugin: under ``scripts/test`` (and so in CI) a test that would skip because a tool is
missing fails instead.

``scripts/test_deps.sh`` installs every tool the suite runs for real (redis-server, Alertmanager,
promtool, Chromium); a skip there would let a broken install pass as green. A developer's partial
machine still skips: the strict mode is on only when REQUIRE_TEST_TOOLS=1. A tool skip is
one whose reason names scripts/test_deps.sh.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

MARK = "scripts/test_deps.sh"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if rep.skipped and os.environ.get("REQUIRE_TEST_TOOLS") == "1" and MARK in str(rep.longrepr):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"required tool missing (REQUIRE_TEST_TOOLS=1): {reason}"
