"""A StateStore on a directory of JSON files, one per key, written atomically (write, fsync, rename).

For notification, silence and actuation state when incident memory (SQLite, Redis) is not configured;
the CLI (`inferguard silence add`) and the daemon share it through the same directory.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from inferguard.errors import MemoryBackendError

_SAFE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class FileStateStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    def _path(self, key: str) -> Path:
        if not _SAFE.match(key) or key.startswith("."):
            raise MemoryBackendError(f"state key {key!r} is not a plain name")
        return self.dir / f"{key}.json"

    async def save(self, key: str, doc: Mapping[str, Any]) -> None:
        path = self._path(key)
        data = json.dumps(doc, ensure_ascii=False, allow_nan=False, default=str)
        await anyio.to_thread.run_sync(_write, path, data)

    async def load(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            text = await anyio.Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise MemoryBackendError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MemoryBackendError(f"{path} is not JSON: {exc}") from None
        return doc if isinstance(doc, dict) else None

    async def aclose(self) -> None:
        return None


def _write(path: Path, data: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise MemoryBackendError(f"cannot write {path}: {exc.strerror or exc}") from None
