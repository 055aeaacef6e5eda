"""An in-memory matrix of incident fingerprints for cosine recall (one matrix product per query).

SQLite holds the vectors; this mirrors them so a query over 100,000 incidents is one numpy dot rather
than 100,000 Python calls. It is refreshed incrementally by a sequence number the writer bumps on
every fingerprint change, and rebuilt whole after retention deleted rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from inferguard.memory.docs import DIMENSIONS


class FingerprintIndex:
    def __init__(self) -> None:
        self.seq = 0
        self.generation = -1
        self._n = 0
        self._rowids = np.zeros(1024, dtype=np.int64)
        self._vecs = np.zeros((1024, DIMENSIONS), dtype=np.float32)
        self._target = np.zeros(1024, dtype=np.int32)
        self._engine = np.zeros(1024, dtype=np.int32)
        self._pos: dict[int, int] = {}
        self._names: dict[str, int] = {}

    def __len__(self) -> int:
        return self._n

    def reset(self, generation: int) -> None:
        self.__init__()  # type: ignore[misc]  # a rebuild is a fresh index
        self.generation = generation

    def _name(self, value: str | None) -> int:
        return self._names.setdefault(value or "", len(self._names) + 1)

    def update(self, rows: Iterable[tuple[int, int, bytes, str | None, str | None]]) -> None:
        """Rows of (rowid, fp_seq, float32 vector bytes, target, engine)."""
        for rowid, seq, blob, target, engine in rows:
            self.seq = max(self.seq, seq)
            if len(blob) != DIMENSIONS * 4:
                # Another fingerprint layout (the store re-computes those on open): not comparable, and
                # one such row must never break every similarity query.
                continue
            pos = self._pos.get(rowid)
            if pos is None:
                if self._n == len(self._rowids):
                    self._grow()
                pos = self._pos[rowid] = self._n
                self._n += 1
                self._rowids[pos] = rowid
            self._vecs[pos] = np.frombuffer(blob, dtype=np.float32)
            self._target[pos] = self._name(target)
            self._engine[pos] = self._name(engine)

    def _grow(self) -> None:
        size = len(self._rowids) * 2
        self._rowids = np.resize(self._rowids, size)
        self._vecs = np.resize(self._vecs, (size, DIMENSIONS))
        self._target = np.resize(self._target, size)
        self._engine = np.resize(self._engine, size)

    def nearest(self, vector: list[float], k: int, *, target: str | None = None, engine: str | None = None,
                exclude: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` rowids most like ``vector`` by cosine (vectors are stored unit length)."""
        if self._n == 0 or k <= 0:
            return []
        q = np.asarray(vector, dtype=np.float32)
        scores: npt.NDArray[np.float32] = self._vecs[: self._n] @ q
        mask = np.ones(self._n, dtype=bool)
        if target is not None:
            mask &= self._target[: self._n] == self._names.get(target, -1)
        if engine is not None:
            mask &= self._engine[: self._n] == self._names.get(engine, -1)
        if exclude is not None and exclude in self._pos:
            mask[self._pos[exclude]] = False
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            return []
        sub = scores[candidates]
        k = min(k, sub.size)
        top = np.argpartition(-sub, k - 1)[:k]
        top = top[np.argsort(-sub[top], kind="stable")]
        return [(int(self._rowids[candidates[i]]), float(sub[i])) for i in top]
