"""Credentials inside target URLs are split off where a Target is built, and kept only for the request.

A target URL may carry ``user:password@`` or a secret in its query (``?token=...``). Everything that
names a target (logs, the API, InferGuard's own /metrics labels, recorded timelines, ``config show``,
brain payloads) uses :func:`split_credentials`'s *safe* URL: user info removed, the value of every
secret query parameter replaced by ``REDACTED``. The full URL lives only in ``Target.request_url``
(never in a repr), which the scraper alone reads.

A query parameter is a secret when its name, lower-cased, contains any of ``SECRET_PARAM_HINTS``:
over-redacting a harmless ``monkey=1`` costs nothing; leaking ``x-api-key`` would.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SECRET_PARAM_HINTS", "is_secret_param", "redact_urls", "split_credentials"]

REDACTED = "REDACTED"
SECRET_PARAM_HINTS = ("token", "secret", "pass", "pwd", "key", "sig", "auth", "cred", "session", "jwt")


def is_secret_param(name: str) -> bool:
    low = name.lower()
    return any(hint in low for hint in SECRET_PARAM_HINTS)


def split_credentials(url: str) -> tuple[str, str | None]:
    """(safe URL, request URL or None when the URL carries no credential)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        host = netloc.rpartition("@")[2]
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return _opaque(url), url
    secret_query = any(is_secret_param(k) for k, _ in query)
    if "@" not in netloc and not secret_query:
        return url, None
    safe_query = (urlencode([(k, REDACTED if is_secret_param(k) else v) for k, v in query], safe="/:")
                  if secret_query else parts.query)
    return urlunsplit((parts.scheme, host, parts.path, safe_query, "")), url


def _opaque(url: str) -> str:
    # Unparseable: say nothing about what is after the scheme that could be a secret.
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{REDACTED}" if sep else REDACTED


def redact_urls(text: str) -> str:
    """A comma-separated list of URLs (TARGET_ENDPOINT), each made safe."""
    return ",".join(split_credentials(u.strip())[0] if u.strip() else u for u in text.split(","))


def safe_url(url: str) -> str:
    """scheme://host[:port]/path: what may be logged of a URL (no userinfo, query or fragment)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
