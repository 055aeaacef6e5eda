"""Recall through Upstash Vector: each incident's text is upserted as data (the index's own embedding
model turns it into a vector) with metadata to filter on; recall queries by text."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from inferguard.errors import ConfigError, MemoryBackendError
from inferguard.memory.docs import check_event, incident_text, summary


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class VectorRecall:
    name = "upstash-vector"

    def __init__(self, url: str, token: str, *, namespace: str = "inferguard", timeout_s: float = 2.0) -> None:
        from upstash_vector import AsyncIndex

        self.ns = namespace
        self.timeout_s = timeout_s
        self._index = AsyncIndex(url=url, token=token, retries=0, allow_telemetry=False)

    async def _call(self, fn: Any) -> Any:
        from upstash_vector.errors import ClientError, UpstashError

        try:
            async with asyncio.timeout(self.timeout_s):
                return await fn()
        except UpstashError as exc:
            if "unauthori" in str(exc).lower():
                raise ConfigError("UPSTASH_VECTOR_REST_TOKEN", "Upstash Vector refused the token") from None
            raise MemoryBackendError(f"upstash vector: {str(exc)[:200]}") from None
        except TimeoutError:
            raise MemoryBackendError("upstash vector: timed out") from None
        except (ClientError, httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            raise MemoryBackendError(f"upstash vector: {type(exc).__name__}: {str(exc)[:200]}") from None

    async def ping(self) -> None:
        await self._call(self._index.info)

    def _id(self, incident_id: str) -> str:
        return f"{self.ns}:{incident_id}"

    async def apply(self, op: str, doc: Mapping[str, Any]) -> None:
        if op == "record":
            await self.record(doc)
        elif op == "prune":
            await self.forget([str(i) for i in doc.get("ids") or []])  # what retention dropped locally
        elif op in ("save", "note"):
            return  # restart state and outcomes are not recall's business
        else:
            raise ValueError(f"unknown spooled operation {op!r}")

    async def record(self, event: Mapping[str, Any]) -> None:
        from upstash_vector.types import Data

        _, inc = check_event(event)
        diag = inc.get("diagnosis") if isinstance(inc.get("diagnosis"), Mapping) else {}
        meta = {"ns": self.ns, "id": inc["id"], "target": inc.get("target"), "engine": inc.get("engine"),
                "model": inc.get("model"), "status": inc.get("status"), "codes": list(inc.get("codes") or []),
                "severity": inc.get("peak_severity") or inc.get("severity"), "opened_at": inc.get("opened_at"),
                "resolved_at": inc.get("resolved_at"), "fingerprint": inc.get("fingerprint"),
                "root_cause": (diag or {}).get("root_cause"), "summary": (diag or {}).get("summary")}
        vec = Data(id=self._id(inc["id"]), data=incident_text(inc)[:4000], metadata=meta)
        await self._call(lambda: self._index.upsert(vectors=[vec]))

    async def recall(self, query: str, *, target: str | None = None, engine: str | None = None,
                     limit: int = 5) -> list[dict[str, Any]]:
        filters = [f"ns = {_quote(self.ns)}"]
        if target is not None:
            filters.append(f"target = {_quote(target)}")
        if engine is not None:
            filters.append(f"engine = {_quote(engine)}")
        hits = await self._call(lambda: self._index.query(data=query, top_k=limit, include_metadata=True,
                                                          filter=" AND ".join(filters)))
        return [summary(dict(h.metadata or {}), h.score) for h in hits]

    async def forget(self, incident_ids: list[str]) -> int:
        if not incident_ids:
            return 0
        result = await self._call(lambda: self._index.delete(ids=[self._id(i) for i in incident_ids]))
        return int(result.deleted)

    async def fetch(self, incident_id: str) -> dict[str, Any] | None:
        found = await self._call(lambda: self._index.fetch(ids=[self._id(incident_id)], include_metadata=True))
        return None if not found or found[0] is None else dict(found[0].metadata or {})

    async def aclose(self) -> None:
        # AsyncIndex has no close(); its httpx client is the one resource it holds.
        await self._index._client.aclose()
