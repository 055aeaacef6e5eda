"""Content-Encoding decoded by us, bounded: the body cap holds on the *decoded* size.

httpx's own decoders inflate a whole network chunk at once, so a 2 KB ``gzip, gzip`` response can
allocate gigabytes before any size check runs. Here every layer inflates at most ``limit + 1`` bytes
per call (``max_length``), so no layer ever holds more than the cap. Encodings we cannot bound this
way (``br``, ``zstd``, ``compress``, anything unknown) are refused, not guessed at.
"""

from __future__ import annotations

import zlib

__all__ = ["MAX_LAYERS", "BodyTooLarge", "BoundedDecoder", "UnsupportedEncoding"]

MAX_LAYERS = 4  # more stacked encodings than any real server sends is itself a sign of abuse
_GZIP = ("gzip", "x-gzip")
_DEFLATE = ("deflate",)


class BodyTooLarge(Exception):
    """A decoded layer passed the cap."""


class UnsupportedEncoding(Exception):
    """A Content-Encoding we cannot decode within a bound (or a malformed one)."""


class _Layer:
    """One gzip (multi-member) or deflate (zlib-wrapped or raw) layer."""

    __slots__ = ("_d", "_kind", "_limit", "_out")

    def __init__(self, kind: str, limit: int) -> None:
        self._kind = kind
        self._limit = limit
        self._out = 0
        self._d: zlib._Decompress | None = zlib.decompressobj(31) if kind == "gzip" else None

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self._d is None:  # deflate: zlib-wrapped per RFC 9110, yet many servers send raw deflate
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._d = zlib.decompressobj(15 if wrapped else -15)
        parts: list[bytes] = []
        while data:
            d = self._d
            try:
                # max_length never 0 (that means unlimited): at most one byte past the cap per call.
                out = d.decompress(data, self._limit + 1 - self._out)
            except zlib.error as exc:
                raise UnsupportedEncoding(f"corrupt {self._kind} data: {exc}") from None
            self._out += len(out)
            if self._out > self._limit:
                raise BodyTooLarge
            parts.append(out)
            if d.unconsumed_tail:
                data = d.unconsumed_tail
            elif d.eof and d.unused_data:
                if self._kind != "gzip":
                    raise UnsupportedEncoding("trailing data after the deflate stream")
                data = d.unused_data  # the next gzip member (gzip allows several, concatenated)
                self._d = zlib.decompressobj(31)
            else:
                data = b""
        return parts[0] if len(parts) == 1 else b"".join(parts)  # one part: no copy of up to a cap

    def finish(self) -> bytes:
        d = self._d
        if d is None:
            return b""
        if not d.eof:
            raise UnsupportedEncoding(f"truncated {self._kind} data")
        return b""


class BoundedDecoder:
    """Decodes a response body given its Content-Encoding values, never holding more than ``limit``."""

    def __init__(self, encodings: list[str], limit: int) -> None:
        layers: list[_Layer] = []
        for raw in encodings:
            enc = raw.strip().lower()
            if enc in ("", "identity"):
                continue
            if enc in _GZIP:
                layers.append(_Layer("gzip", limit))
            elif enc in _DEFLATE:
                layers.append(_Layer("deflate", limit))
            else:
                raise UnsupportedEncoding(f"Content-Encoding {enc[:32]!r} is not supported")
        if len(layers) > MAX_LAYERS:
            raise UnsupportedEncoding(f"{len(layers)} stacked Content-Encodings (at most {MAX_LAYERS})")
        # Encodings are listed in the order applied: undo them last first.
        self._layers = layers[::-1]

    @property
    def identity(self) -> bool:
        """True when there is nothing to decode: the raw bytes are the body."""
        return not self._layers

    def feed(self, data: bytes) -> bytes:
        """Decode one raw chunk. Each layer stops at the cap itself (BodyTooLarge)."""
        for layer in self._layers:
            data = layer.feed(data)
        return data

    def finish(self) -> None:
        for layer in self._layers:
            layer.finish()
