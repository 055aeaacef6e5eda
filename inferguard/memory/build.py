"""Memory settings → the incident memory: the embedded store, or a remote backend with it as the spool.

Only :mod:`inferguard.runtime.build` calls this (tests/unit/test_architecture.py holds it): the daemon and
every one-shot command open memory through it, so they all open the same thing the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from inferguard.config import MemorySettings
from inferguard.errors import ConfigError
from inferguard.memory.commands import RedisCommands, UpstashCommands
from inferguard.memory.remote import RemoteState
from inferguard.memory.sqlite import DB_NAME, SqliteStore
from inferguard.memory.store import Memory
from inferguard.memory.vector import VectorRecall


def open_local(settings: MemorySettings, *, clock: Callable[[], float] = time.time) -> SqliteStore:
    """The embedded store in the resolved state directory (it is also the spool of remote backends)."""
    return SqliteStore(settings.resolved_state_dir() / DB_NAME, retention_days=settings.memory_retention_days,
                       max_incidents=settings.memory_max_incidents, max_events=settings.memory_max_events,
                       clock=clock)


def check(settings: MemorySettings) -> None:
    """Refuse, by name, a backend chosen without the settings it needs (before anything starts)."""
    state, recall = settings.state_backend(), settings.recall_backend()
    if state == "redis" and settings.redis_url is None:
        raise ConfigError("INFERGUARD_REDIS_URL", "required when INFERGUARD_MEMORY_STATE=redis")
    if state == "upstash":
        if not settings.upstash_redis_rest_url:
            raise ConfigError("UPSTASH_REDIS_REST_URL", "required when INFERGUARD_MEMORY_STATE=upstash")
        if settings.upstash_redis_rest_token is None:
            raise ConfigError("UPSTASH_REDIS_REST_TOKEN", "required with UPSTASH_REDIS_REST_URL")
    if recall == "upstash":
        if not settings.upstash_vector_rest_url:
            raise ConfigError("UPSTASH_VECTOR_REST_URL", "required when INFERGUARD_MEMORY_RECALL=upstash")
        if settings.upstash_vector_rest_token is None:
            raise ConfigError("UPSTASH_VECTOR_REST_TOKEN", "required with UPSTASH_VECTOR_REST_URL")


def open_memory(settings: MemorySettings, *, clock: Callable[[], float] = time.time,
                log: Callable[..., None] | None = None) -> Memory:
    """The embedded store plus whichever remote state and recall backends the settings choose.
    Call ``await memory.start()`` before use: it checks credentials (a ConfigError names the setting)."""
    check(settings)
    timeout = settings.memory_timeout_seconds
    limits: dict[str, Any] = {"namespace": settings.namespace, "retention_days": settings.memory_retention_days,
                              "max_incidents": settings.memory_max_incidents,
                              "max_events": settings.memory_max_events}
    state: RemoteState | None = None
    vector: VectorRecall | None = None
    backend = settings.state_backend()
    if backend == "redis" and settings.redis_url is not None:
        state = RemoteState(RedisCommands(settings.redis_url.get_secret_value(), timeout_s=timeout), **limits)
    elif backend == "upstash" and settings.upstash_redis_rest_url and settings.upstash_redis_rest_token:
        state = RemoteState(UpstashCommands(settings.upstash_redis_rest_url,
                                            settings.upstash_redis_rest_token.get_secret_value(),
                                            timeout_s=timeout), **limits)
    vector_url, vector_token = settings.upstash_vector_rest_url, settings.upstash_vector_rest_token
    if settings.recall_backend() == "upstash" and vector_url and vector_token:
        vector = VectorRecall(vector_url, vector_token.get_secret_value(),
                              namespace=settings.namespace, timeout_s=timeout)
    return Memory(open_local(settings, clock=clock), state=state, vector=vector, log=log)
