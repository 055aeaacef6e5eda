"""Incident memory: the embedded SQLite store by default; Redis and Upstash when configured."""

from inferguard.memory.sqlite import SqliteStore

__all__ = ["SqliteStore"]
