"""Where the HTTP surface listens, whether that is allowed, and which Host headers it answers."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from inferguard.errors import ConfigError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class Bind:
    host: str  # without IPv6 brackets
    port: int

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a name may resolve anywhere: treat it as exposed

    @property
    def wildcard(self) -> bool:
        return self.host in ("0.0.0.0", "::", "")


def parse_listen(listen: str, setting: str = "INFERGUARD_LISTEN") -> Bind:
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(setting, f"must be host:port, e.g. 127.0.0.1:9464 (got {listen!r})")
    return Bind(host, int(port))


def check_bind(bind: Bind, token_set: bool, setting: str = "INFERGUARD_LISTEN") -> None:
    """Anything but loopback is reachable by others: it must not serve without a token."""
    if not bind.loopback and not token_set:
        raise ConfigError(setting, f"{bind.address} is not a loopback address; set INFERGUARD_API_TOKEN "
                                   "(16+ characters) to serve on it, or listen on 127.0.0.1")


def allowed_hosts(bind: Bind, extra: str = "") -> frozenset[str] | None:
    """Host header names this listener answers (None: any). Checking them defeats DNS rebinding: a
    page on evil.example whose name now resolves to 127.0.0.1 still sends ``Host: evil.example``."""
    names = {h.strip().lower().strip("[]") for h in extra.split(",") if h.strip()}
    if bind.loopback:
        return frozenset(LOOPBACK_NAMES | {bind.host.lower()} | names)
    if bind.wildcard:
        # Reached by pod IPs, service names and load balancers we cannot know; the token guards it.
        return frozenset(names) if names else None
    return frozenset({bind.host.lower()} | names)


def host_name(header: str) -> str:
    """``example:9464`` → ``example``; ``[::1]:9464`` → ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def bind_socket(bind: Bind) -> socket.socket:
    """Bind before serving so a taken port is one clear OSError naming the address (uvicorn would
    report only its exit code)."""
    family = socket.AF_INET6 if ":" in bind.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind.host, bind.port))
        sock.listen(512)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
