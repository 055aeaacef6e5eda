"""Run the HTTP surface inside the daemon's event loop, with its limits, and stop it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from inferguard.api.guard import GuardConfig
from inferguard.api.health import Health
from inferguard.api.limits import AcceptErrors, connection_cap, limited_protocol
from inferguard.api.listen import Bind, allowed_hosts, bind_socket, check_bind, parse_listen
from inferguard.api.readmodel import ApiReadModel
from inferguard.api.routes import StreamGate, build_app
from inferguard.telemetry import Telemetry


@dataclass(frozen=True, slots=True)
class ApiOptions:
    bind: Bind
    token: str | None = None
    allowed_hosts: str = ""
    max_connections: int = 128
    header_timeout_s: float = 10.0
    rate_per_s: float = 20.0
    max_request_bytes: int = 65536

    @classmethod
    def from_settings(cls, server: Any, listen: str | None = None) -> ApiOptions:
        """From ``ServerSettings``; refuses (ConfigError) a non-loopback bind without a token."""
        token = server.api_token.get_secret_value() if server.api_token is not None else None
        setting = "--listen" if listen and listen != server.listen else "INFERGUARD_LISTEN"
        bind = parse_listen(listen or server.listen, setting)
        check_bind(bind, token is not None, setting)
        return cls(bind=bind, token=token, allowed_hosts=server.api_allowed_hosts,
                   max_connections=server.api_max_connections, header_timeout_s=server.api_header_timeout_seconds,
                   rate_per_s=server.api_rate_limit_per_second, max_request_bytes=server.api_max_request_bytes)

    def guard(self) -> GuardConfig:
        return GuardConfig(token=self.token, hosts=allowed_hosts(self.bind, self.allowed_hosts),
                           rate_per_s=self.rate_per_s, max_request_bytes=self.max_request_bytes)


class ApiServer:
    def __init__(self, options: ApiOptions, telemetry: Telemetry, health: Health, model: ApiReadModel,
                 log: Any, clock: Callable[[], float]) -> None:
        self.options = options
        self.log = log
        self.gate = StreamGate()
        self.evicted = 0
        self.cap = connection_cap(options.max_connections)
        app = build_app(telemetry, health, model, options.guard(), clock=clock, gate=self.gate)
        protocol = limited_protocol(self.cap, options.header_timeout_s, on_evict=self._evict)
        config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="off", http=protocol,
                                timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024,
                                timeout_graceful_shutdown=2,
                                # asyncio accepts up to `backlog` sockets per wake-up without yielding;
                                # a small batch lets evictions free descriptors before the next batch.
                                backlog=min(32, self.cap))
        self._server = uvicorn.Server(config)
        # The daemon owns SIGTERM/SIGINT.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self.done = asyncio.Event()

    def _evict(self) -> None:
        self.evicted += 1
        if self.evicted == 1 or self.evicted % 1000 == 0:
            self.log.error("server.connections_capped", listen=self.options.bind.address, cap=self.cap,
                           evicted=self.evicted)

    async def serve(self) -> bool:
        """Serve until close(); False (after one log line) when the address cannot be bound."""
        address = self.options.bind.address
        try:
            try:
                sock = bind_socket(self.options.bind)
            except OSError as exc:
                # Monitoring goes on without the HTTP surface; say exactly why, once.
                self.log.error("server.failed", listen=address,
                               error=f"cannot listen on {address}: {exc.strerror or exc} (errno {exc.errno})")
                return False
            loop = asyncio.get_running_loop()
            previous = loop.get_exception_handler()
            loop.set_exception_handler(AcceptErrors(lambda n: self.log.error(
                "server.accept_failed", listen=address, error="out of file descriptors; refusing connections",
                count=n)))
            try:
                await self._server.serve(sockets=[sock])
            finally:
                loop.set_exception_handler(previous)
                sock.close()
            return True
        finally:
            self.done.set()

    def close(self) -> None:
        self.gate.closing.set()
        self._server.should_exit = True
