"""A loopback OpenAI-compatible server that replays recorded answers. A TEST DOUBLE, not an LLM.

It speaks the real protocol (HTTP/1.1, ``POST /v1/chat/completions``, the OpenAI response shape and
error bodies) so the real ``openai`` SDK is exercised end to end; only the model is replaced by a
script of :class:`Reply` objects. Used by tests/brain and by ``rlm-agent eval --double``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    reject_json_schema: bool = False  # answer 400 to response_format=json_schema, like older servers

    @classmethod
    def answer(cls, obj: dict[str, Any], **kw: Any) -> Reply:
        return cls(content=json.dumps(obj), **kw)

    @classmethod
    def malformed(cls) -> Reply:
        return cls(content='{"root_cause": "kv_cache_exhaustion", "summary": ')

    @classmethod
    def slow(cls, obj: dict[str, Any], delay_s: float) -> Reply:
        return cls(content=json.dumps(obj), delay_s=delay_s)

    @classmethod
    def rate_limited(cls, retry_after: float = 0.0) -> Reply:
        return cls(status=429, headers={"retry-after": f"{retry_after:g}"})

    @classmethod
    def server_error(cls) -> Reply:
        return cls(status=503)

    @classmethod
    def refused(cls) -> Reply:
        return cls(content=None, refusal="I can't help with that.")


class RecordedLLMServer:
    """Serve scripted replies on 127.0.0.1:<free port>. Thread-based so any event loop can call it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._script: deque[Reply] = deque()
        self.default: Reply | None = None
        # When the script is empty: the reply for a request whose response_format names this JSON schema
        # (the brain names each: "diagnosis", "w1_trend", ..., "combine"), before ``default``.
        self.by_schema: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.default = None
            self.by_schema = {}

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            fmt_name = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
            reply = self._script[0] if self._script else self.by_schema.get(str(fmt_name), self.default)
            if reply is None:
                return Reply(status=500, content="no scripted reply")
            fmt = (body.get("response_format") or {}).get("type")
            if reply.reject_json_schema and fmt == "json_schema":
                return Reply(status=400, content="response_format json_schema is not supported")
            if self._script:
                self._script.popleft()
            return reply

    def start(self) -> RecordedLLMServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests
                return

            def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                # The client may have given up (a timeout test): nothing left to tell it.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "recorded", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
                    return
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                reply = outer._next(body)
                if reply.delay_s:
                    outer._stop.wait(reply.delay_s)
                if reply.status != 200:
                    kind = "rate_limit_error" if reply.status == 429 else "invalid_request_error" \
                        if reply.status == 400 else "server_error"
                    self._send(reply.status, {"error": {"message": reply.content or kind, "type": kind,
                                                        "code": None, "param": None}}, reply.headers)
                    return
                content = reply.content
                self._send(200, {
                    "id": f"chatcmpl-{len(outer.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model", "recorded"),
                    "choices": [{"index": 0, "finish_reason": reply.finish_reason, "logprobs": None,
                                 "message": {"role": "assistant", "content": content,
                                             "refusal": reply.refusal}}],
                    "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": len(content or "") // 4,
                              "total_tokens": len(raw) // 4 + len(content or "") // 4},
                }, reply.headers)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="recorded-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> RecordedLLMServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
