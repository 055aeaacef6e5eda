"""Every test gets its own state directory: a daemon or command under test never writes incident
memory into the developer's home (and never adopts an incident another test left open)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.strict_tools"]


@pytest.fixture(autouse=True)
def _own_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("INFERGUARD_STATE_DIR", str(state))
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    return state
