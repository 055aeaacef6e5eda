#!/usr/bin/env python3
"""An example actuation receiver: verifies InferGuard's signature and logs the action. It changes
nothing: what an action does on your engines is yours to write (where the log line is).

    INFERGUARD_ACTUATION_SECRET=... python3 receiver.py --listen 127.0.0.1:9000

Standard library only. Answers 204 for an accepted action, 200 for a duplicate (same Idempotency-Key,
already handled), 401 for a bad or stale signature, 400 for a body that is not JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --- verification snippet (docs/actuation.md shows this block; a test keeps them identical) ---
import hashlib
import hmac
import time

TOLERANCE_S = 300  # refuse requests signed longer ago than this: a captured request cannot be replayed


def verify_inferguard_request(secret: bytes, headers: dict[str, str], body: bytes, seen: dict[str, float],
                              now: float | None = None) -> str:
    """Return "ok", "duplicate", or raise ValueError saying why the request must be refused.

    ``headers`` keys are case-insensitive names lower-cased; ``seen`` maps idempotency keys to when they
    were accepted (keep it at least TOLERANCE_S; a database table in production)."""
    now = time.time() if now is None else now
    ts = headers.get("x-inferguard-timestamp", "")
    sig = headers.get("x-inferguard-signature", "")
    key = headers.get("idempotency-key", "")
    if not ts.isdigit() or not sig.startswith("sha256=") or not key:
        raise ValueError("missing or malformed signature headers")
    if abs(now - int(ts)) > TOLERANCE_S:
        raise ValueError("stale timestamp (possible replay)")
    expected = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sig):
        raise ValueError("bad signature")
    for k, t in list(seen.items()):
        if now - t > 2 * TOLERANCE_S:
            del seen[k]
    if key in seen:
        return "duplicate"
    seen[key] = now
    return "ok"
# --- end of verification snippet ---


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:9000", help="host:port")
    args = ap.parse_args(argv)
    secret = os.environ.get("INFERGUARD_ACTUATION_SECRET", "").encode()
    if len(secret) < 16:
        print("receiver: set INFERGUARD_ACTUATION_SECRET (at least 16 characters)", file=sys.stderr)
        return 64
    seen: dict[str, float] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                with lock:
                    verdict = verify_inferguard_request(secret, headers, body, seen)
                action = json.loads(body)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError too
                status = 400 if isinstance(exc, json.JSONDecodeError) else 401
                self._answer(status, {"event": "refused", "reason": str(exc)})
                return
            # Your engine adapter goes here; this example only logs what it was asked to do.
            self._answer(204 if verdict == "ok" else 200, {
                "event": "accepted" if verdict == "ok" else "duplicate", "action": action.get("action"),
                "parameters": action.get("parameters"), "target": action.get("target"),
                "incident_id": action.get("incident_id"), "idempotency_key": action.get("idempotency_key")})

        def _answer(self, status: int, line: dict[str, object]) -> None:
            print(json.dumps({"ts": time.time(), "status": status, **line}), flush=True)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(json.dumps({"event": "listening", "listen": f"{host}:{server.server_address[1]}"}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
