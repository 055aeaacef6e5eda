"""The bounded Content-Encoding decoder on its own: layers, members, corruption, the cap."""

from __future__ import annotations

import gzip
import zlib

import pytest

from inferguard.sources.decode import MAX_LAYERS, BodyTooLarge, BoundedDecoder, UnsupportedEncoding

TEXT = b"vllm:num_requests_running 1\n" * 100


def _decode(encodings: list[str], body: bytes, limit: int = 1 << 20, step: int = 7) -> bytes:
    d = BoundedDecoder(encodings, limit)
    out = b"".join(d.feed(body[i:i + step]) for i in range(0, len(body), step))
    d.finish()
    return out


@pytest.mark.parametrize(("encodings", "body"), [
    ([], TEXT), (["identity"], TEXT), (["gzip"], gzip.compress(TEXT)), (["x-gzip"], gzip.compress(TEXT)),
    (["GZIP "], gzip.compress(TEXT)), (["deflate"], zlib.compress(TEXT)),
    (["deflate"], zlib.compress(TEXT, wbits=-15)),  # raw deflate, as many servers send it
    (["gzip", "gzip"], gzip.compress(gzip.compress(TEXT))),
    (["deflate", "gzip"], gzip.compress(zlib.compress(TEXT))),
    (["gzip"], gzip.compress(TEXT[:500]) + gzip.compress(TEXT[500:])),  # two members
])
def test_decodes_in_any_chunking(encodings: list[str], body: bytes) -> None:
    assert _decode(encodings, body) == TEXT
    assert _decode(encodings, body, step=len(body)) == TEXT


def test_each_layer_stops_one_call_past_the_cap() -> None:
    bomb = gzip.compress(gzip.compress(b"\0" * (8 << 20)))  # ~8 KB on the wire
    d = BoundedDecoder(["gzip", "gzip"], 1 << 16)
    with pytest.raises(BodyTooLarge):
        d.feed(bomb)
    assert _decode(["gzip", "gzip"], bomb, limit=8 << 20) == b"\0" * (8 << 20)


@pytest.mark.parametrize(("encodings", "body"), [
    (["br"], b"x"), (["zstd"], b"x"), (["compress"], b"x"), (["gzip", "br"], b"x"),
    (["gzip"] * (MAX_LAYERS + 1), b"x"),
    (["gzip"], b"not gzip at all"), (["deflate"], b"\x00\x01garbage"),
    (["gzip"], gzip.compress(TEXT)[:-9]),  # truncated
    (["deflate"], zlib.compress(TEXT) + b"trailing"),
])
def test_what_cannot_be_bounded_or_decoded_is_refused(encodings: list[str], body: bytes) -> None:
    with pytest.raises(UnsupportedEncoding):
        _decode(encodings, body)
