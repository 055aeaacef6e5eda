"""Request signing for the actuation webhook: HMAC-SHA256 over ``timestamp + "." + body``.

Headers: ``X-InferGuard-Timestamp`` (Unix seconds), ``X-InferGuard-Signature`` (``sha256=<hex>``) and
``Idempotency-Key``. The receiver checks the signature in constant time, refuses a timestamp older than
its tolerance (a captured request cannot be replayed later) and drops a repeated idempotency key (nor
within the tolerance). deploy/actuation-receiver/receiver.py is the reference receiver.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-InferGuard-Timestamp"
SIGNATURE_HEADER = "X-InferGuard-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float, idempotency_key: str) -> dict[str, str]:
    ts = str(int(now))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body), IDEMPOTENCY_HEADER: idempotency_key,
            "Content-Type": "application/json"}
