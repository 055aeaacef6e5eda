#!/usr/bin/env python3
"""A canary probe: one streaming chat (or completion) request to an OpenAI-compatible server, measured.

Prints exactly one JSON line and exits 0 when the request succeeded, 1 when it did not:

    {"ok": true, "status": 200, "ttft_s": 0.084, "tpot_s": 0.021, "tokens": 16, "error": null,
     "model": "...", "mode": "chat"}

``ttft_s`` is the time to the first generated token, ``tpot_s`` the mean time per output token after
it, ``tokens`` the generated tokens (the server's own count when it reports usage, else the content
chunks received). Standard library only, so it runs anywhere Python 3.9+ does (a sandbox, a cron job):

    python3 openai_stream_probe.py http://127.0.0.1:8000 --model my-model --max-tokens 16

An API key, when needed, is read from the environment variable named by --api-key-env (OPENAI_API_KEY).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from urllib.parse import urlsplit


def _base(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/")
    for suffix in ("/metrics", "/v1"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, path


def _conn(scheme: str, host: str, port: int, timeout: float) -> http.client.HTTPConnection:
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    return cls(host, port, timeout=timeout)


def _headers(api_key: str | None) -> dict[str, str]:
    h = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        h["Authorization"] = f"Bearer {api_key}"
    return h


def first_model(scheme: str, host: str, port: int, prefix: str, timeout: float, api_key: str | None) -> str:
    conn = _conn(scheme, host, port, timeout)
    try:
        conn.request("GET", f"{prefix}/v1/models", headers=_headers(api_key))
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET /v1/models: HTTP {resp.status}")
        data = json.loads(body).get("data") or []
        if not data:
            raise RuntimeError("GET /v1/models lists no model")
        return str(data[0]["id"])
    finally:
        conn.close()


def _carries_token(choice: dict[str, object], mode: str) -> bool:
    """Does this streamed choice bring a generated token?

    Not only when it has text: a token that detokenises to nothing (a special token, half of a UTF-8
    character held back) still arrives as a chunk with empty text; vLLM streamed a tiny model's eight
    tokens as eight chunks of "" with a usage count of 8. Not counted: chat's opening chunk, which only
    names the role, and a closing chunk that brings nothing but the finish reason.
    """
    if mode == "chat":
        delta = choice.get("delta")
        if not isinstance(delta, dict) or ("role" in delta and not delta.get("content")):
            return False
        text = delta.get("content")
    else:
        text = choice.get("text")
    if not isinstance(text, str):
        return False
    return bool(text) or choice.get("finish_reason") is None


def probe(url: str, *, model: str | None, mode: str, max_tokens: int, prompt: str, timeout: float,
          api_key: str | None) -> dict[str, object]:
    result: dict[str, object] = {"ok": False, "status": None, "ttft_s": None, "tpot_s": None, "tokens": 0,
                                 "error": None, "model": model, "mode": mode}
    try:
        scheme, host, port, prefix = _base(url)
        if not model:
            model = first_model(scheme, host, port, prefix, timeout, api_key)
            result["model"] = model
        body: dict[str, object] = {"model": model, "max_tokens": max_tokens, "stream": True, "temperature": 0,
                                   "stream_options": {"include_usage": True}}
        if mode == "chat":
            path, body["messages"] = "/v1/chat/completions", [{"role": "user", "content": prompt}]
        else:
            path, body["prompt"] = "/v1/completions", prompt
        conn = _conn(scheme, host, port, timeout)
        start = time.perf_counter()
        try:
            conn.request("POST", prefix + path, body=json.dumps(body), headers=_headers(api_key))
            resp = conn.getresponse()
            result["status"] = resp.status
            if resp.status != 200:
                result["error"] = f"HTTP {resp.status}: {resp.read(300).decode('utf-8', 'replace')}"
                return result
            first = last = None
            chunks = 0
            usage_tokens = None
            for raw in resp:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if event.get("error"):
                    result["error"] = f"stream error: {json.dumps(event['error'])[:300]}"
                    return result
                if event.get("usage"):
                    usage_tokens = event["usage"].get("completion_tokens")
                for choice in event.get("choices") or []:
                    if not _carries_token(choice, mode):
                        continue
                    now = time.perf_counter()
                    first = now if first is None else first
                    last = now
                    chunks += 1
        finally:
            conn.close()
        tokens = int(usage_tokens) if isinstance(usage_tokens, int) else chunks
        result["tokens"] = tokens
        if first is None:
            result["error"] = "no token generated"
            return result
        result["ttft_s"] = round(first - start, 6)
        if tokens > 1 and last is not None:
            result["tpot_s"] = round((last - first) / (tokens - 1), 6)
        result["ok"] = True
    except (OSError, ValueError, RuntimeError, http.client.HTTPException) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="one measured streaming request to an OpenAI-compatible server")
    ap.add_argument("url", help="server base URL (…/v1 and …/metrics are accepted too)")
    ap.add_argument("--model", default=None, help="model name (default: the first one /v1/models lists)")
    ap.add_argument("--mode", choices=("chat", "completion"), default="chat")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--prompt", default="Say hello in five words.")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds, per read")
    ap.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    args = ap.parse_args(argv)
    result = probe(args.url, model=args.model, mode=args.mode, max_tokens=args.max_tokens, prompt=args.prompt,
                   timeout=args.timeout, api_key=os.environ.get(args.api_key_env) or None)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
