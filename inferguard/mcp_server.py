"""`inferguard serve`: InferGuard's read-only tools for AI assistants over the Model Context Protocol
(the official ``mcp`` SDK), beside a watcher running in the same process.

Tools: ``scan`` (one look at a configured target), ``list_incidents``, ``show_incident``, ``recall``,
``explain_anomaly``, ``advisories``, ``targets``. None changes anything, calls the LLM or reaches a URL that
is not a configured target. Streamable HTTP binds loopback unless ``INFERGUARD_API_TOKEN`` is set, checks
Host and Origin (DNS rebinding) and, with a token, requires it as a bearer header.
"""

from __future__ import annotations

import contextlib
import hmac
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from starlette.types import ASGIApp, Receive, Scope, Send

from inferguard.api.listen import Bind, bind_socket
from inferguard.api.routes import BadParam, filter_incidents
from inferguard.explain import explain
from inferguard.jsonsafe import finite

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
Scanner = Callable[[Any, float], Awaitable[dict[str, Any]]]


def build_server(daemon: Any, scanner: Scanner) -> MCPServer:
    """The MCP server over a running Daemon (its read model and targets). ``scanner(target, window_s)``
    does one two-scrape look (the same as ``inferguard scan``)."""
    server: MCPServer = MCPServer(
        name="inferguard", version="1",
        instructions="Read-only view of InferGuard, which watches vLLM/SGLang serving engines: current "
                     "targets and incidents with their diagnosis, advisories (advice only), recall of past "
                     "incidents, and explanations of anomaly codes. Nothing here changes an engine.")
    model = daemon.parts.read_model
    assert model is not None, "the daemon was built without its read model"

    def find_target(name: str) -> Any:
        for t in daemon.targets:
            if name in (t.url, t.name):
                return t
        known = ", ".join(t.name or t.url for t in daemon.targets) or "none (pass TARGET URLs to serve)"
        raise ToolError(f"unknown target {name!r}; configured targets: {known}")

    @server.tool(annotations=READ_ONLY)
    async def scan(target: str, window_seconds: float = 5.0) -> dict[str, Any]:
        """One look at a configured target: two scrapes `window_seconds` apart (1-60) and a verdict with
        anomalies, diagnosis and advisories."""
        if not (math.isfinite(window_seconds) and 1 <= window_seconds <= 60):
            raise ToolError("window_seconds must be from 1 to 60")
        result: dict[str, Any] = finite(await scanner(find_target(target), window_seconds))
        return result

    @server.tool(annotations=READ_ONLY)
    def targets() -> dict[str, Any]:
        """The watched targets: name, engine, model, health, last scrape, open incidents."""
        return {"targets": [{k: v for k, v in t.items() if k != "series"} for t in model.targets()]}

    @server.tool(annotations=READ_ONLY)
    def list_incidents(status: str | None = None, target: str | None = None, code: str | None = None,
                       limit: int = 20) -> dict[str, Any]:
        """Incidents seen by this process, newest first. status: open or resolved; code: an anomaly code."""
        if not 1 <= limit <= 200:
            raise ToolError("limit must be from 1 to 200")
        params = {k: v for k, v in {"status": status, "target": target, "code": code}.items() if v is not None}
        try:
            items = filter_incidents(model.incidents(), params)
        except BadParam as exc:
            raise ToolError(str(exc)) from None
        return {"total": len(items), "incidents": [_brief(i) for i in items[:limit]]}

    @server.tool(annotations=READ_ONLY)
    async def show_incident(incident_id: str) -> dict[str, Any]:
        """One incident in full: anomalies with evidence, diagnosis and its history, advisories, events,
        actions and a window of signals."""
        inc = await model.incident(incident_id)
        if inc is None:
            raise ToolError(f"no incident {incident_id!r}")
        return dict(inc)

    @server.tool(annotations=READ_ONLY)
    async def recall(query: str, limit: int = 5) -> dict[str, Any]:
        """Past incidents like a free-text query (e.g. 'kv cache exhaustion on llama')."""
        if not query.strip() or len(query) > 500:
            raise ToolError("query must be 1-500 characters")
        if not 1 <= limit <= 50:
            raise ToolError("limit must be from 1 to 50")
        found: dict[str, Any] = await model.recall(query.strip(), limit)
        return found

    @server.tool(annotations=READ_ONLY)
    def explain_anomaly(code: str) -> dict[str, Any]:
        """What an anomaly code means, when it fires and what to look at."""
        try:
            return explain(code)
        except ValueError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(annotations=READ_ONLY)
    def advisories() -> dict[str, Any]:
        """Current advisories: of open incidents (reactive) and of proactive investigations. Advice only."""
        found: dict[str, Any] = model.advisories()
        return {**found, "advisory_only": True}

    return server


def _brief(inc: dict[str, Any]) -> dict[str, Any]:
    d = inc.get("diagnosis") or {}
    return {"id": inc["id"], "target": inc.get("target"), "model": inc.get("model"), "status": inc.get("status"),
            "severity": inc.get("severity"), "codes": inc.get("codes", []), "opened_at": inc.get("opened_at"),
            "resolved_at": inc.get("resolved_at"), "root_cause": d.get("root_cause"),
            "confidence": d.get("confidence")}



class BearerOnly:
    """Every request needs ``Authorization: Bearer <token>`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self._token = app, token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, given = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self._token):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b'Bearer realm="inferguard"')]})
                await send({"type": "http.response.body", "body": b'{"error": "missing or wrong bearer token"}'})
                return
        await self.app(scope, receive, send)


def http_app(server: MCPServer, bind: Bind, token: str | None, extra_hosts: str = "") -> ASGIApp:
    names = {"127.0.0.1", "localhost", "[::1]"} if bind.loopback else set()
    if not bind.loopback and not bind.wildcard:
        names.add(f"[{bind.host}]" if ":" in bind.host else bind.host)
    names |= {h.strip() for h in extra_hosts.split(",") if h.strip()}
    # Host/Origin checks stop DNS rebinding; on 0.0.0.0 with no names given the token guards it alone.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=bool(names), allowed_hosts=[f"{n}:*" for n in names] + sorted(names),
        allowed_origins=[f"http://{n}:*" for n in names] + [f"https://{n}:*" for n in names])
    app: ASGIApp = server.streamable_http_app(streamable_http_path="/mcp", transport_security=security,
                                              host=bind.host, max_request_body_size=1024 * 1024)
    return BearerOnly(app, token) if token else app


async def run(daemon: Any, server: MCPServer, transport: str, bind: Bind | None, token: str | None,
              extra_hosts: str = "") -> None:
    """Serve MCP while the watcher runs; either ending (SIGTERM, stdin closed) stops both."""
    async with anyio.create_task_group() as tg:
        http: uvicorn.Server | None = None

        async def watcher() -> None:
            await daemon.run()
            if http is not None:
                http.should_exit = True
            else:
                tg.cancel_scope.cancel()

        tg.start_soon(watcher)
        if transport == "stdio":
            await server.run_stdio_async()
        else:
            assert bind is not None
            sock = bind_socket(bind)
            config = uvicorn.Config(http_app(server, bind, token, extra_hosts), log_level="error",
                                    access_log=False, timeout_keep_alive=5, limit_concurrency=64,
                                    timeout_graceful_shutdown=2)
            http = uvicorn.Server(config)
            http.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
            try:
                await http.serve(sockets=[sock])
            finally:
                sock.close()
        daemon.stop()
