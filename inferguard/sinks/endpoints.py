"""Receiver URLs with their credentials: ``URL[;bearer=TOKEN][;basic=USER:PASS]``, comma-separated.

Credentials never appear in logs or errors: an endpoint prints as scheme://host/path only.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from inferguard.errors import ConfigError
from inferguard.urls import safe_url


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def display(self) -> str:
        return safe_url(self.url)

    def __str__(self) -> str:
        return self.display


def parse_endpoints(raw: str | None, setting: str) -> list[Endpoint]:
    """Parse a comma-separated list of receivers; a bad entry is a ConfigError naming the setting
    and the entry's position (never its value: it may hold a token)."""
    out: list[Endpoint] = []
    if not raw:
        return out
    for i, entry in enumerate(e.strip() for e in raw.split(",")):
        if not entry:
            continue
        url, *options = [p.strip() for p in entry.split(";")]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{setting}[{i}]", "not an http(s) URL")
        headers: dict[str, str] = {}
        if parts.username is not None:  # basic auth in the URL's userinfo, the way curl takes it
            headers["Authorization"] = _basic(unquote(parts.username), unquote(parts.password or ""))
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        for opt in options:
            key, sep, value = opt.partition("=")
            if not sep or not value:
                raise ConfigError(f"{setting}[{i}]", "options are ;bearer=TOKEN or ;basic=USER:PASS")
            if key == "bearer":
                headers["Authorization"] = f"Bearer {value}"
            elif key == "basic":
                user, colon, password = value.partition(":")
                if not colon:
                    raise ConfigError(f"{setting}[{i}]", "basic= takes USER:PASS")
                headers["Authorization"] = _basic(user, password)
            else:
                raise ConfigError(f"{setting}[{i}]", f"unknown option {key!r}; use bearer= or basic=")
        out.append(Endpoint(url, headers))
    return out


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
