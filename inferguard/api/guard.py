"""One ASGI layer in front of every route: Host check, methods, request size, rate limit, bearer token,
security headers. CORS is off: no Access-Control-* header is ever sent and OPTIONS is refused.

GET and HEAD everywhere; the only writes are the silences' (POST /api/silences, DELETE
/api/silences/{id}), and they need the bearer token like every API read when one is set."""

from __future__ import annotations

import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inferguard.api.listen import host_name

# Probes must answer even under a flood from the same address; they carry nothing secret.
PROBES = frozenset({"/healthz", "/readyz"})
# The page shell holds no data: it shows a login form and sends the token as a bearer header itself.
SHELL_PREFIXES = ("/static/",)
SHELL = frozenset({"/", "/favicon.ico"})
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                 b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]


@dataclass(frozen=True, slots=True)
class GuardConfig:
    token: str | None = None
    hosts: frozenset[str] | None = None  # None: any Host
    rate_per_s: float = 20.0
    max_request_bytes: int = 65536
    max_clients: int = 4096  # rate-limit buckets kept; the least recently seen is forgotten


class _Buckets:
    """Token buckets per client address, bounded in number."""

    def __init__(self, rate: float, burst: float, max_clients: int, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.max_clients, self.clock = rate, burst, max_clients, clock
        self._b: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0 when allowed, else seconds until a token is available."""
        now = self.clock()
        tokens, last = self._b.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self._b[key] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self._b) > self.max_clients:
            self._b.popitem(last=False)
        return wait


class Guard:
    def __init__(self, app: ASGIApp, config: GuardConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.cfg = config
        self._token = config.token.encode() if config.token else None
        self._buckets = _Buckets(config.rate_per_s, max(2.0, 2 * config.rate_per_s), config.max_clients, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refuse(scope)
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + SECURITY_HEADERS
                if path.startswith("/api/") or path == "/openapi.json":
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        if refusal is not None:
            status, error, extra = refusal
            await _json(send_with_headers, status, {"error": error}, extra)
            return
        await self.app(scope, receive, send_with_headers)

    def _refuse(self, scope: Scope) -> tuple[int, str, Iterable[tuple[bytes, bytes]]] | None:
        headers = {k.lower(): v for k, v in scope["headers"]}
        path: str = scope["path"]
        if self.cfg.hosts is not None:
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.cfg.hosts:
                return 421, "unknown Host header; this server answers only the names it listens on", ()
        if scope["method"] not in ("GET", "HEAD") and not _writable(scope["method"], path):
            return 405, f"method {scope['method']} not allowed here", [(b"allow", b"GET, HEAD")]
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.cfg.max_request_bytes or b"transfer-encoding" in headers:
            return 413, f"request body too large (limit {self.cfg.max_request_bytes} bytes)", ()
        query = scope.get("query_string", b"").lower()
        if any(q in query for q in (b"token=", b"access_token=", b"api_key=")):
            # A URL lands in logs, histories and Referer headers: a token there is already leaked.
            return 400, "a token never goes in the URL; send it as 'Authorization: Bearer <token>'", ()
        if path not in PROBES:
            client = (scope.get("client") or ("?", 0))[0]
            wait = self._buckets.take(str(client))
            if wait:
                return 429, "too many requests", [(b"retry-after", str(max(1, round(wait))).encode())]
        if self._token is not None and path not in PROBES and path not in SHELL \
                and not path.startswith(SHELL_PREFIXES):
            auth = headers.get(b"authorization", b"")
            scheme, _, given = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self._token):
                return 401, "missing or wrong bearer token", [(b"www-authenticate", b'Bearer realm="inferguard"')]
        return None


def _writable(method: str, path: str) -> bool:
    """The API's only writes: add a silence, expire one."""
    return (method == "POST" and path == "/api/silences") or (
        method == "DELETE" and path.startswith("/api/silences/") and "/" not in path.removeprefix("/api/silences/"))


async def _json(send: Callable[[Message], Any], status: int, body: dict[str, Any],
                extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": data})
