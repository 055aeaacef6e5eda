"""A PROTOCOL DOUBLE of Upstash (Redis REST + Vector REST) on 127.0.0.1, for tests only.

Upstash is a hosted service this machine cannot reach, so the real ``upstash-redis`` and
``upstash-vector`` SDKs talk to this loopback server instead. It speaks the part of Upstash's REST
protocol they use, as documented by Upstash:

* Redis: ``POST /`` with a JSON array command, ``POST /pipeline`` and ``POST /multi-exec`` with a
  2-D array; ``Authorization: Bearer <token>`` (401 otherwise); ``{"result": ...}`` or
  ``{"error": ...}`` (400); with ``Upstash-Encoding: base64`` every string in a result is base64
  except a plain ``OK``. Commands are forwarded as RESP to a REAL redis-server, so the Redis part
  behaves as Redis does.
* Vector: ``/upsert-data``, ``/query-data``, ``/fetch``, ``/delete``, ``/info``. The real service embeds
  text with the index's embedding model; this double embeds it with a hashed bag of words (a stand-in,
  not a model), scores cosine as Upstash does for COSINE indexes ((1 + cos) / 2), and filters on
  metadata with the ``field = 'value' [AND ...]`` subset of Upstash's filter language.

``fail`` (``None`` | ``"down"`` | ``"slow"``) injects an outage.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TOKENS = re.compile(r"[^\W_]+")
_FILTER = re.compile(r"^\s*(\w+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*$")


class Resp:
    """A minimal RESP2 client: enough to forward REST commands to a real redis-server verbatim."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = self.sock.makefile("rb")

    def call(self, args: list[Any]) -> Any:
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self) -> Any:
        line = self.buf.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return ("simple", rest.decode())
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.buf.read(n + 2)[:-2]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read_safe() for _ in range(n)]
        raise RuntimeError(f"bad RESP reply {line!r}")

    def _read_safe(self) -> Any:
        try:
            return self._read()
        except RuntimeError as exc:  # an error inside an array (EXEC): keep it as a value
            return ("error", str(exc))

    def close(self) -> None:
        self.sock.close()


def _encode(value: Any, b64: bool) -> Any:
    if isinstance(value, tuple) and value[0] == "simple":
        text = value[1]
        return text if (text == "OK" or not b64) else base64.b64encode(text.encode()).decode()
    if isinstance(value, tuple) and value[0] == "error":
        return value[1]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode() if b64 else value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_encode(v, b64) for v in value]
    return value


def embed(text: str, dims: int = 256) -> list[float]:
    vec = [0.0] * dims
    for word in _TOKENS.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
        vec[h % dims] += 1.0
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm else vec


def _matches(meta: dict[str, Any], expr: str) -> bool:
    if not expr.strip():
        return True
    for clause in re.split(r"\s+AND\s+", expr):
        m = _FILTER.match(clause)
        if m is None:
            raise ValueError(f"unsupported filter clause {clause!r}")
        want = m.group(2).replace("\\'", "'").replace("\\\\", "\\")
        if str(meta.get(m.group(1))) != want:
            return False
    return True


class UpstashDouble:
    def __init__(self, redis_port: int, *, token: str = "test-token", vector_token: str = "vector-token") -> None:
        self.redis_port = redis_port
        self.token, self.vector_token = token, vector_token
        self.fail: str | None = None
        self.requests: list[tuple[str, Any]] = []
        self.vectors: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                double._handle(self)

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> UpstashDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- HTTP ----------------------------------------------------------------------------------
    def _reply(self, h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if self.fail == "down":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)  # like a load balancer with nothing behind it
            return
        if self.fail == "slow":
            time.sleep(5)
        path = h.path.split("?")[0].rstrip("/") or "/"
        vector = path.split("/")[1] in ("upsert-data", "query-data", "fetch", "delete", "info")
        token = h.headers.get("Authorization", "")
        if token != f"Bearer {self.vector_token if vector else self.token}":
            self._reply(h, 401, {"error": "Unauthorized: Invalid token"})
            return
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            self._reply(h, 400, {"error": "ERR failed to parse command"})
            return
        self.requests.append((path, payload))
        if vector:
            self._vector(h, path.split("/")[1], payload)
        else:
            self._redis(h, path, payload, h.headers.get("Upstash-Encoding") == "base64")

    def _redis(self, h: BaseHTTPRequestHandler, path: str, payload: Any, b64: bool) -> None:
        resp = Resp(self.redis_port)
        try:
            if path == "/":
                try:
                    self._reply(h, 200, {"result": _encode(resp.call(payload), b64)})
                except RuntimeError as exc:
                    self._reply(h, 400, {"error": str(exc)})
                return
            commands = payload if path == "/pipeline" else [["MULTI"], *payload, ["EXEC"]]
            results = []
            for command in commands:
                try:
                    results.append({"result": _encode(resp.call(command), b64)})
                except RuntimeError as exc:
                    results.append({"error": str(exc)})
            if path == "/multi-exec":
                results = [{"result": r} for r in results[-1]["result"]]
            self._reply(h, 200, results)
        finally:
            resp.close()

    def _vector(self, h: BaseHTTPRequestHandler, op: str, payload: Any) -> None:
        with self._lock:
            try:
                if op == "upsert-data":
                    for item in payload if isinstance(payload, list) else [payload]:
                        self.vectors[str(item["id"])] = {"data": item["data"], "metadata": item.get("metadata"),
                                                         "vector": embed(item["data"])}
                    result: Any = "Success"
                elif op == "query-data":
                    q = embed(payload["data"])
                    scored = []
                    for vid, v in self.vectors.items():
                        if _matches(v["metadata"] or {}, payload.get("filter") or ""):
                            cos = sum(a * b for a, b in zip(q, v["vector"], strict=True))
                            scored.append({"id": vid, "score": (1 + cos) / 2,
                                           **({"metadata": v["metadata"]} if payload.get("includeMetadata") else {}),
                                           **({"data": v["data"]} if payload.get("includeData") else {})})
                    scored.sort(key=lambda r: -r["score"])
                    result = scored[: int(payload.get("topK", 10))]
                elif op == "fetch":
                    meta = bool(payload.get("includeMetadata"))
                    result = [None if i not in self.vectors else
                              {"id": i, **({"metadata": self.vectors[i]["metadata"]} if meta else {})}
                              for i in payload.get("ids", [])]
                elif op == "delete":
                    gone = [i for i in payload.get("ids", []) if self.vectors.pop(i, None) is not None]
                    result = {"deleted": len(gone)}
                else:  # info
                    result = {"vectorCount": len(self.vectors), "pendingVectorCount": 0, "indexSize": 0,
                              "dimension": 256, "similarityFunction": "COSINE", "namespaces": {}}
            except (KeyError, TypeError, ValueError) as exc:
                self._reply(h, 400, {"error": f"bad request: {exc}"})
                return
        self._reply(h, 200, {"result": result})
