"""What the one-shot commands over incident memory share (``silence``, ``actions``, ``probe``,
``replay --notify``, ``recall``, ``incidents``): loading the settings, running the async work, and
turning an error into one line on stderr and an exit code (:func:`inferguard.exitcodes.fail`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from inferguard.config import Settings
from inferguard.errors import ConfigError, InferGuardError, MemoryBackendError
from inferguard.exitcodes import EXIT_SOFTWARE, fail
from inferguard.memory.store import Memory
from inferguard.runtime.oneshot import using_memory

T = TypeVar("T")


def load_settings() -> Settings:
    """The settings, or exit 64 naming the setting that is wrong."""
    try:
        return Settings.load()
    except ConfigError as exc:
        raise fail(exc) from None


def run(fn: Callable[..., Awaitable[T]], *args: Any, default: int) -> T:
    """``anyio.run(fn, *args)``; a backend that did not answer exits 70 (EX_SOFTWARE), any other
    InferGuardError exits ``default`` (a bad setting 64 and a bad timeline 65 whatever ``default`` is)."""
    try:
        return anyio.run(fn, *args)
    except MemoryBackendError as exc:
        raise fail(exc, default=EXIT_SOFTWARE) from None
    except InferGuardError as exc:
        raise fail(exc, default=default) from None


def with_memory(use: Callable[[Memory], Awaitable[T]], *, default: int = EXIT_SOFTWARE) -> tuple[T, Memory]:
    """Run ``use`` on the configured incident memory, opened quiet and closed after
    (:func:`inferguard.runtime.oneshot.using_memory`); returns its result and the closed memory, for the
    command to say what served and what did not answer. Errors exit as :func:`run` says."""
    settings = load_settings()
    return run(using_memory, settings, use, default=default)
