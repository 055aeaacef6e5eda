"""The canary probe reads what real servers stream, byte for byte: vLLM 0.32's chunks for a tiny
random-weight model whose tokens detokenise to nothing (the completion stream below was captured from
the real engine on this machine), chat's role-only opening chunk, and OpenAI's empty closing delta."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inferguard.probes import LocalProbe


def sse(*events: dict[str, object]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def cmpl(text: str, finish: str | None = None) -> dict[str, object]:
    return {"id": "cmpl-1", "object": "text_completion", "model": "tiny",
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": None}]}


def chat(delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "tiny",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def usage(n: int) -> dict[str, object]:
    return {"id": "x", "choices": [], "usage": {"prompt_tokens": 5, "total_tokens": 5 + n, "completion_tokens": n}}


# vLLM 0.32, /v1/completions, max_tokens 8, the tiny model: eight tokens, every one of them "" as text.
VLLM_EMPTY_TEXT = sse(*[cmpl("") for _ in range(7)], cmpl("", "length"), usage(8))
# vLLM 0.32, /v1/chat/completions: the role first (no token yet), then a token per chunk.
VLLM_CHAT = sse(chat({"role": "assistant", "content": ""}), chat({"content": "Mon"}), chat({"content": " caches"}),
                chat({"content": " caches"}, "length"), usage(3))
# OpenAI's shape: the closing chunk is an empty delta with the finish reason and no usage.
OPENAI_CHAT = sse(chat({"role": "assistant", "content": ""}), chat({"content": "Hi"}), chat({"content": "!"}),
                  chat({}, "stop"))
# A server that answered 200 and streamed no token at all.
NOTHING = sse(chat({"role": "assistant", "content": ""}), chat({}, "stop"), usage(0))


@contextmanager
def streaming(body: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # /v1/models
            self._send(json.dumps({"data": [{"id": "tiny"}]}).encode(), "application/json")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._send(body, "text/event-stream")

        def _send(self, payload: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("mode", "body", "tokens"), [("completion", VLLM_EMPTY_TEXT, 8), ("chat", VLLM_CHAT, 3),
                                                      ("chat", OPENAI_CHAT, 2)])
async def test_every_streamed_token_counts_even_when_it_has_no_text(mode: str, body: bytes, tokens: int) -> None:
    with streaming(body) as url:
        result = await LocalProbe(mode=mode, max_tokens=8, timeout_s=30).probe(url)
    assert result["ran"] is True and result["ok"] is True and result["error"] is None, result
    assert result["tokens"] == tokens and result["ttft_s"] > 0 and result["tpot_s"] is not None


async def test_a_stream_without_a_token_is_a_failed_probe() -> None:
    with streaming(NOTHING) as url:
        result = await LocalProbe(mode="chat", max_tokens=8, timeout_s=30).probe(url)
    assert result["ran"] is True and result["ok"] is False and result["error"] == "no token generated", result
