"""``rlm-agent serve``: the same entry points over HTTP for InferGuard's remote brain mode."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .agent import aadvise, ainvestigate
from .errors import PayloadInvalid, RlmAgentError
from .llm import LLMClient
from .vocab import SCHEMA_VERSION

MAX_BODY = 1 << 20  # 1 MiB: a payload window is a few hundred samples, never megabytes


def _error(status: int, kind: str, message: str, path: str = "") -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message[:500], "path": path}}, status_code=status)


async def _body(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise _TooLarge
    try:
        return json.loads(raw)
    except ValueError:
        raise PayloadInvalid("body is not JSON") from None


class _TooLarge(Exception):
    pass


def create_app(llm: LLMClient | None = None) -> Starlette:
    async def handle(request: Request, kind: str) -> JSONResponse:
        try:
            payload = await _body(request)
            answer = await (aadvise(payload, llm=llm) if kind == "advise" else ainvestigate(payload, llm=llm))
        except _TooLarge:
            return _error(413, "payload_too_large", f"body over {MAX_BODY} bytes")
        except PayloadInvalid as exc:
            return _error(400, "payload_invalid", exc.detail, exc.path)
        except RlmAgentError as exc:
            return _error(500, "brain_error", str(exc))
        return JSONResponse(answer)

    async def advise_route(request: Request) -> JSONResponse:
        return await handle(request, "advise")

    async def investigate_route(request: Request) -> JSONResponse:
        return await handle(request, "investigate")

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "schema_version": SCHEMA_VERSION,
                             "llm": bool(llm is not None and llm.configured)})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if llm is not None:
            await llm.aclose()

    return Starlette(routes=[Route("/v1/advise", advise_route, methods=["POST"]),
                             Route("/v1/investigate", investigate_route, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])], lifespan=lifespan)
