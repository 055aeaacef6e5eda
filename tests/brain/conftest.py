"""Shared fixtures for the brain tests: eval cases, a recorded-answer LLM double, free ports."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from rlm_agent.evals.runner import load_cases
from rlm_agent.testing import RecordedLLMServer

CASES = {c["name"]: c for c in load_cases()}


def case_payload(name: str) -> dict[str, Any]:
    return copy.deepcopy(CASES[name]["payload"])


@pytest.fixture
def llm_server() -> Iterator[RecordedLLMServer]:
    """The loopback OpenAI-compatible test double (real HTTP, scripted answers)."""
    with RecordedLLMServer() as server:
        yield server
