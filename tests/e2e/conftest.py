"""Fixtures for the real-vLLM stage: one engine at a time, reused while the server arguments match.

Nothing here skips: if the venv, the tiny model or the engine cannot be prepared, the test errors with
the engine log (tests/e2e/harness.EngineError), so CI cannot go green without a real engine having run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import VllmServer, ensure_venv, tiny_model, vocab_words


@dataclass(frozen=True)
class EngineArgs:
    num_gpu_blocks: int | None = None
    max_num_seqs: int | None = None
    prefix_caching: bool = False


class EnginePool:
    """Keeps at most one engine alive (2 shared cores); restarts it when a test needs other arguments."""

    def __init__(self, python: Path, model: Path, logdir: Path) -> None:
        self.python = python
        self.model = model
        self.logdir = logdir
        self.current: tuple[EngineArgs, VllmServer] | None = None
        self.started = 0

    def get(self, args: EngineArgs) -> VllmServer:
        if self.current is not None:
            have, server = self.current
            if have == args and server.alive:
                return server
            server.stop()
            self.current = None
        server = VllmServer(self.python, self.model, num_gpu_blocks=args.num_gpu_blocks,
                            max_num_seqs=args.max_num_seqs, prefix_caching=args.prefix_caching,
                            log_path=self.logdir / f"vllm-{self.started}.log")
        self.started += 1
        server.start()  # raises EngineError with the log tail
        self.current = (args, server)
        return server

    def close(self) -> None:
        if self.current is not None:
            self.current[1].stop()
            self.current = None


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    return ensure_venv()


@pytest.fixture(scope="session")
def tiny(vllm_python: Path) -> Path:
    return tiny_model(vllm_python)


@pytest.fixture(scope="session")
def words(tiny: Path) -> list[str]:
    return vocab_words(tiny)


_POOLS: list[EnginePool] = []


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the engine once the last end-to-end test in a row has run: the rest of the suite should not
    share two cores and 3 GB with an idle vLLM. A later e2e test (another order) starts one again."""
    if nextitem is None or nextitem.get_closest_marker("e2e") is None:
        for pool in _POOLS:
            pool.close()


@pytest.fixture(scope="session")
def engines(vllm_python: Path, tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnginePool]:
    pool = EnginePool(vllm_python, tiny, tmp_path_factory.mktemp("vllm-logs"))
    _POOLS.append(pool)
    try:
        yield pool
    finally:
        pool.close()
