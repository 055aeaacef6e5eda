"""One POST helper for every HTTP channel: typed SinkError, never the URL's secrets in a message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from inferguard.errors import SinkError
from inferguard.sinks.endpoints import Endpoint


def client(transport: httpx.AsyncBaseTransport | None = None, timeout_s: float = 10.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=timeout_s, trust_env=False)


async def post_json(http: httpx.AsyncClient, endpoint: Endpoint, body: Any, *, what: str,
                    headers: Mapping[str, str] | None = None) -> httpx.Response:
    try:
        resp = await http.post(endpoint.url, json=body, headers={**endpoint.headers, **(headers or {})})
    except httpx.HTTPError as exc:
        raise SinkError(f"{what} {endpoint.display}: {type(exc).__name__}") from None
    if resp.status_code >= 300:
        raise SinkError(f"{what} {endpoint.display}: HTTP {resp.status_code}")
    return resp
